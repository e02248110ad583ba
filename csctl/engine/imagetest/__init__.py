"""``csctl image-test``: boot one VM with csctl's real contextualization and follow it
through every phase, from the boot request to its termination.

A probe job, targeted at that VM by its csctl id, reports what the VM really offers;
the report compares it with what the VM type promises. Whatever happens (a failed
phase, a timeout, Ctrl-C), the VM is cleaned up unless the operator asked to keep it.
The decisions (phases, exit codes, specs, the probe's verdicts) are in
``csctl/plan/imagetest/``; this package acts on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from csctl.engine.imagetest.parallel import run_image_tests
from csctl.engine.imagetest.probe import PROBE_SCRIPT, probe_job
from csctl.engine.imagetest.runner import DEFAULT_TIMEOUTS, run_image_test
from csctl.engine.services import Services
from csctl.errors import InputError
from csctl.model import Pool
from csctl.model.imagetest import ProbeQueue
from csctl.plan.imagetest import ImageTestResults, PhaseEvent, Timeouts, image_test_specs

__all__ = ["PROBE_SCRIPT", "Timeouts", "image_test", "probe_job", "run_image_test", "run_image_tests"]


def image_test(
    services: Services,
    cloud: str,
    vm_types: Sequence[str] = (),
    image: str | None = None,
    flavor: str | None = None,
    *,
    probe_script: Path | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    keep: bool = False,
    progress: Callable[[PhaseEvent], None] = lambda event: None,
    probes: ProbeQueue | None = None,
) -> ImageTestResults:
    """Test each of ``vm_types`` (in parallel), or ``image`` with ``flavor``, on ``cloud``.

    The arguments are checked before anything is contacted (InputError, one line), then
    the signing key is read (ConfigError without one). Probe jobs go to the pool's schedd
    unless ``probes`` is given; ``probe_script`` is the site's own check they run.
    Every test reports, also a failed or interrupted one (see run_image_test).
    """
    config = services.config
    specs = image_test_specs(config, cloud, vm_types, image, flavor)
    site_script = _read_probe_script(probe_script)
    key = services.signing_key("boot VMs")
    clouds = {cloud: services.clouds[cloud]}
    pool = services.pool
    queue = probes if probes is not None else _schedd_queue(pool)
    reports = run_image_tests(
        specs, config, clouds, pool, queue, key,
        timeouts=timeouts, keep=keep, site_script=site_script, progress=progress, now=services.now,
    )  # fmt: skip
    return ImageTestResults(reports)


def _read_probe_script(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read probe script: {exc.strerror}") from None


def _schedd_queue(pool: Pool) -> ProbeQueue:
    """Probe jobs on the pool's schedd, through the same bindings the pool uses."""
    from csctl.pool.htcondor import HTCondorPool
    from csctl.pool.probes import ScheddProbeQueue

    if not isinstance(pool, HTCondorPool):
        raise TypeError("image-test submits probe jobs through the htcondor bindings: pass probes=")
    return ScheddProbeQueue(pool)
