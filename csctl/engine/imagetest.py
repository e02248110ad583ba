"""``csctl image-test``: boot one VM with csctl's real contextualization and follow it
through every phase, from the boot request to its termination.

A probe job, targeted at that VM by its csctl id, reports what the VM really offers;
the report compares it with what the VM type promises. Whatever happens (a failed
phase, a timeout, Ctrl-C), the VM is cleaned up unless the operator asked to keep it.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, Protocol, TypeVar

from csctl.config import Config, VMTypeConfig
from csctl.context.tokens import SigningKey, derive_vm_key, scramble
from csctl.engine.boot import boot_request, new_batch_id
from csctl.engine.retire import drain_target
from csctl.engine.state import write_atomically
from csctl.errors import CsctlError, ExitCode, InputError
from csctl.model import Cloud, DrainTarget, Instance, StartdSlot, VMState, vm_id
from csctl.plan import attributes as A
from csctl.plan.placement import BootItem
from csctl.plan.reconcile import Status, VMView

log = logging.getLogger(__name__)
SCHEMA = "csctl.imagetest/1"
PROBE_ATTR = A.CSCTL_IMAGE_TEST  # on the test VM's startd and on its probe job
TAG_IMAGE_TEST = "csctl-image-test"
IMAGE_TYPE = "image-test"  # the VM type name of an --image/--flavor test
MISMATCH_EXIT = 18  # every phase passed, but the VM does not offer what its type promises
CONSOLE_LINES = 60
T = TypeVar("T")


class Phase(IntEnum):
    """The phases of an image test, in order; a failure exits with ``10 + phase``."""

    REQUESTED = 1
    RUNNING = 2
    JOINED = 3
    MATCHED = 4
    FINISHED = 5
    DRAINED = 6
    TERMINATED = 7

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def exit_code(self) -> int:
        return 10 + int(self)


_LABELS = {
    Phase.REQUESTED: "requested",
    Phase.RUNNING: "running in the cloud",
    Phase.JOINED: "joined the pool",
    Phase.MATCHED: "probe job matched",
    Phase.FINISHED: "probe job finished",
    Phase.DRAINED: "drained",
    Phase.TERMINATED: "terminated",
}


class PhaseState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class PhaseResult:
    """One phase of one test; ``seconds`` once it ended."""

    phase: Phase
    state: PhaseState = PhaseState.PENDING
    seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class PhaseEvent:
    """A phase started (ACTIVE) or ended; what progress callbacks receive."""

    label: str
    phase: Phase
    state: PhaseState
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class Timeouts:
    """Seconds each waiting phase may take; ``drain`` covers draining and terminating."""

    boot: float = 600
    join: float = 900
    job: float = 600
    drain: float = 300


@dataclass(frozen=True)
class ImageTestSpec:
    """One VM to test: a configured VM type, or an image and flavor (``promised`` False)."""

    label: str
    cloud: str
    vm_type: str
    image: str
    flavor: str | None
    promised: bool = True


@dataclass
class Check:
    """One resource: what the type promises, what the startd advertises, what was detected."""

    resource: str
    promised: str | int | float | None
    advertised: str | int | float | None
    detected: str | int | float | None
    ok: bool | None  # None: nothing promised, nothing to judge
    note: str = ""


@dataclass
class Probe:
    """What the probe job reported: ``values`` (``ad.*`` from its machine ad, ``os.*``
    from the VM itself) and the site script's output and exit status, if one ran."""

    values: dict[str, str]
    exit_code: int | None
    site_output: str | None = None
    site_exit: int | None = None


@dataclass
class ImageTestReport:
    """The outcome of one image test."""

    label: str
    cloud: str
    vm_type: str
    image: str
    flavor: str | None
    phases: list[PhaseResult]
    csctl_id: str | None = None
    job_id: str | None = None
    probe: Probe | None = None
    checks: list[Check] = field(default_factory=list)
    console: str | None = None
    console_path: str | None = None
    kept: bool = False
    interrupted: bool = False
    cleanup_errors: list[str] = field(default_factory=list)
    schema: str = SCHEMA

    def phase(self, phase: Phase) -> PhaseResult:
        return self.phases[int(phase) - 1]

    @property
    def failed_phase(self) -> Phase | None:
        return next((p.phase for p in self.phases if p.state is PhaseState.FAILED), None)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: phases by name (``joined``) with their label."""
        data = dataclasses.asdict(self)
        data["phases"] = [
            {
                **dataclasses.asdict(p),
                "phase": p.phase.name.lower(),
                "label": p.phase.label,
                "state": p.state.value,
            }
            for p in self.phases
        ]
        failed = self.failed_phase
        return {**data, "exit_code": self.exit_code, "failed_phase": failed.name.lower() if failed else None}

    @property
    def exit_code(self) -> int:
        """130 if interrupted, 10 + the failed phase, 18 on a resource mismatch, else 0."""
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        failed = self.failed_phase
        if failed is not None:
            return failed.exit_code
        return MISMATCH_EXIT if any(c.ok is False for c in self.checks) else 0


def overall_exit_code(reports: Sequence[ImageTestReport]) -> int:
    """Interrupted wins; otherwise the earliest failure of any test (lowest code), or 0."""
    codes = [r.exit_code for r in reports]
    if int(ExitCode.INTERRUPTED) in codes:
        return int(ExitCode.INTERRUPTED)
    return min((c for c in codes if c), default=0)


# -- collaborators ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeStatus:
    """A probe job in the queue; ``code`` is JobStatus, None once it left the queue."""

    code: int | None
    exit_code: int | None = None
    hold_reason: str | None = None
    hold_code: int | None = None
    exit_signal: int | None = None


IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING, SUSPENDED = 1, 2, 3, 4, 5, 6, 7
SPOOLING_HOLD_CODE = 16  # held until its input files are spooled: not a failure


class ProbeQueue(Protocol):
    """Where probe jobs are submitted (a schedd, as the configured submitter)."""

    def submit(self, job: ProbeJob) -> str:
        """Submit ``job``; return its id (``cluster.proc``)."""
        ...

    def status(self, job_id: str) -> ProbeStatus:
        """The job's status now."""
        ...

    def output(self, job_id: str) -> str:
        """The completed job's standard output."""
        ...

    def remove(self, job_id: str) -> None:
        """Remove the job from the queue and forget its files."""
        ...

    def nudge(self) -> None:
        """Ask for a negotiation cycle soon."""
        ...


class DrainPool(Protocol):
    """What an image test needs of the pool."""

    def csctl_slots(self) -> list[StartdSlot]:
        """Slot ads of the pool's csctl VMs."""
        ...

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """Drain gracefully; csctl id -> None when accepted, else the error."""
        ...


# -- the probe ----------------------------------------------------------------------------

PROBE_SCRIPT = r"""#!/bin/sh
# csctl image-test probe: reports what this VM offers, then runs the site's script.
ad="${_CONDOR_MACHINE_AD:-.machine.ad}"
for a in CsctlId TotalCpus TotalMemory TotalDisk DetectedCpus DetectedMemory Arch OpSys \
         OpSysAndVer CondorVersion; do
    echo "ad.$a=$(sed -n "s/^$a = //p" "$ad" 2>/dev/null | head -n 1 | tr -d '"')"
done
echo "os.machine=$(uname -m)"
echo "os.release=$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
echo "os.cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "os.mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "os.disk_kb=$(df -Pk . 2>/dev/null | awk 'NR == 2 {print $4}')"
status=0
if [ -f csctl-site-probe ]; then
    chmod +x csctl-site-probe
    echo "csctl-site-begin"
    ./csctl-site-probe 2>&1 || status=$?
    echo "csctl-site-end"
    echo "site.exit=$status"
fi
exit $status
"""


@dataclass(frozen=True)
class ProbeJob:
    """The probe job for one VM: runs there only (its csctl id), asks for little."""

    csctl_id: str
    site_script: bytes | None = None
    idle_lifetime: int = 900  # the schedd removes it if still idle then (csctl died)
    script: str = PROBE_SCRIPT

    def description(self) -> dict[str, str]:
        """Submit commands, without the file names the queue adds."""
        return {
            "universe": "vanilla",
            # naming Arch and OpSys keeps submit from adding the submit host's own
            "requirements": (
                f'TARGET.{A.CSCTL_ID} == "{self.csctl_id}" '
                "&& TARGET.Arch =!= undefined && TARGET.OpSys =!= undefined"
            ),
            "request_cpus": "1",
            "request_memory": "64",
            "request_disk": "1024",
            "should_transfer_files": "YES",
            "when_to_transfer_output": "ON_EXIT",
            f"MY.{PROBE_ATTR}": f'"{self.csctl_id}"',
            "batch_name": f"csctl-image-test-{self.csctl_id}",
            "periodic_remove": f"JobStatus == {IDLE} && time() - QDate > {self.idle_lifetime}",
            "notification": "never",
        }


def parse_probe(text: str, exit_code: int | None) -> Probe:
    """Read the probe's output: ``key=value`` lines and the site script's block."""
    values: dict[str, str] = {}
    site: list[str] | None = None
    in_site = False
    for line in text.splitlines():
        if line == "csctl-site-begin":
            in_site, site = True, []
        elif line == "csctl-site-end":
            in_site = False
        elif in_site and site is not None:
            site.append(line)
        elif "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    site_exit = _int(values.get("site.exit"))
    site_output = "\n".join(site[-40:]) if site is not None else None
    return Probe(values, exit_code, site_output, site_exit)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _version(value: str | None) -> tuple[int, ...] | None:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", value or "")
    return tuple(int(x) for x in found.groups()) if found else None


def compare(vm_type: VMTypeConfig | None, probe: Probe) -> list[Check]:
    """Each resource the type promises against what the startd advertises and what the VM
    has (HTCondor's own detection, else the OS). Advertised values must equal the promise
    (disk: at least 90%); detected ones must reach it (memory: within 10%, the kernel keeps
    some). Without a type (``--image``) nothing is judged."""
    v = probe.values
    t = vm_type
    det_mem = _int(v.get("ad.DetectedMemory"))
    os_mem = _int(v.get("os.mem_kb"))
    if det_mem is None and os_mem is not None:
        det_mem = os_mem // 1024
    return [
        _at_least(
            "cpus",
            t.cpus if t else None,
            _int(v.get("ad.TotalCpus")),
            _int(v.get("ad.DetectedCpus")) or _int(v.get("os.cpus")),
            exact=True,
        ),
        _at_least(
            "memory MB",
            t.memory if t else None,
            _int(v.get("ad.TotalMemory")),
            det_mem,
            exact=True,
            slack=0.9,
        ),
        _at_least(
            "disk GB", t.disk if t else None, _gb(v.get("ad.TotalDisk")), _gb(v.get("os.disk_kb")), slack=0.9
        ),
        _same("arch", t.arch if t else None, v.get("ad.Arch"), v.get("os.machine")),
        _same("opsys", t.opsys if t else None, v.get("ad.OpSys"), v.get("os.release")),
        _condor_version(t, v.get("ad.CondorVersion")),
    ]


def _gb(kib: str | None) -> float | None:
    value = _int(kib)
    return None if value is None else round(value / (1024 * 1024), 1)


def _at_least(
    name: str,
    promised: int | None,
    advertised: float | None,
    detected: float | None,
    exact: bool = False,
    slack: float = 1.0,
) -> Check:
    check = Check(name, promised or None, advertised, detected, None)
    if not promised:
        return check
    notes = []
    if advertised is None:
        notes.append("not advertised")
    elif (exact and advertised != promised) or advertised < promised * slack:
        notes.append(f"the startd advertises {advertised}")
    if detected is not None and detected < promised * slack:
        notes.append(f"the VM has only {detected}")
    check.ok, check.note = not notes, "; ".join(notes)
    return check


def _same(name: str, promised: str | None, advertised: str | None, detected: str | None) -> Check:
    check = Check(name, promised or None, advertised or None, detected or None, None)
    if promised:
        check.ok = (advertised or "").lower() == promised.lower()
        check.note = "" if check.ok else f"the startd advertises {advertised or 'nothing'}"
    return check


def _condor_version(vm_type: VMTypeConfig | None, advertised: str | None) -> Check:
    seen = _version(advertised)
    check = Check(
        "HTCondor",
        vm_type.condor_version if vm_type else None,
        ".".join(map(str, seen)) if seen else None,
        None,
        None,
    )
    if vm_type is not None:
        promised = _version(vm_type.condor_version)
        check.ok = seen is not None and promised is not None and seen >= promised
        if not check.ok:  # demand would boot this type for jobs its HTCondor cannot serve
            check.note = "older than the type's condor_version" if seen else "not advertised"
    return check


# -- what to test -------------------------------------------------------------------------


def image_test_specs(
    config: Config, cloud: str, vm_types: Sequence[str], image: str | None, flavor: str | None
) -> list[ImageTestSpec]:
    """The tests the command line asks for; InputError (one line) when it makes no sense."""
    if cloud not in config.clouds:
        known = ", ".join(sorted(config.clouds)) or "none configured"
        raise InputError(f'unknown cloud "{cloud}" (known: {known})')
    if vm_types and (image or flavor):
        raise InputError("give either --type or --image with --flavor, not both")
    if image or flavor:
        if not image or not flavor:
            raise InputError("--image and --flavor go together: give both")
        return [ImageTestSpec(image, cloud, IMAGE_TYPE, image, flavor, promised=False)]
    if not vm_types:
        raise InputError("give --type TYPE (repeatable) or --image IMAGE --flavor FLAVOR")
    specs = []
    for name in dict.fromkeys(vm_types):
        vm_type = config.vm_types.get(name)
        if vm_type is None:
            known = ", ".join(sorted(config.vm_types)) or "none configured"
            raise InputError(f'unknown VM type "{name}" (known: {known})')
        if cloud not in vm_type.images:
            raise InputError(f'VM type "{name}" has no image on cloud "{cloud}" (vm_types.{name}.images)')
        specs.append(ImageTestSpec(name, cloud, name, vm_type.images[cloud], vm_type.flavors.get(cloud)))
    return specs


def probe_config(config: Config, spec: ImageTestSpec, csctl_id: str) -> Config:
    """The configuration the test VM is rendered with: csctl's own, plus a START clause that
    admits only its probe job (no user job lands on an image under test), an attribute
    naming it in condor_status, and for ``--image`` a minimal VM type."""
    extra = [
        f"# csctl image-test: only the probe job may run on {csctl_id}",
        f'{PROBE_ATTR} = "{csctl_id}"',
        f"STARTD_ATTRS = $(STARTD_ATTRS) {PROBE_ATTR}",
        f'START = ($(START)) && (TARGET.{PROBE_ATTR} =?= "{csctl_id}")',
    ]
    vm_config = "\n".join([config.pool.vm_config.rstrip(), *extra]).lstrip("\n")
    update: dict[str, Any] = {"pool": config.pool.model_copy(update={"vm_config": vm_config})}
    if not spec.promised:
        # nothing is promised: advertise little, the probe reports what the VM detects
        minimal = VMTypeConfig.model_validate({"cpus": 1, "memory": 512, "disk": 1, "images": {}})
        update["vm_types"] = {**config.vm_types, spec.vm_type: minimal}
    return config.model_copy(update=update)


# -- running one test ---------------------------------------------------------------------


class _Failed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Interrupted(Exception):
    pass


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without IDTOKENs (any JWT) and without the given secret strings."""
    text = re.sub(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "<redacted>", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


class _Runner:
    """One image test. ``run`` never raises for a failed phase, and always cleans up."""

    def __init__(
        self,
        spec: ImageTestSpec,
        config: Config,
        cloud: Cloud,
        pool: DrainPool,
        probes: ProbeQueue,
        pool_key: SigningKey,
        *,
        timeouts: Timeouts,
        keep: bool,
        site_script: bytes | None,
        progress: Callable[[PhaseEvent], None],
        clock: Callable[[], float],
        sleep: Callable[[float], Any],
        now: Callable[[], datetime],
        stop: threading.Event,
        poll: float,
    ) -> None:
        self.spec, self.config, self.cloud, self.pool, self.probes = spec, config, cloud, pool, probes
        self.pool_key, self.timeouts, self.keep, self.site_script = pool_key, timeouts, keep, site_script
        self.progress, self.clock, self.sleep, self.now, self.stop = progress, clock, sleep, now, stop
        self.poll = poll
        self.report = ImageTestReport(
            spec.label, spec.cloud, spec.vm_type, spec.image, spec.flavor, [PhaseResult(p) for p in Phase]
        )
        self.instance: Instance | None = None
        self.terminated = False
        self.secrets: list[str] = []

    def run(self) -> ImageTestReport:
        try:
            self._request()
            self._running()
            self._joined()
            self._matched()
            self._finished()
            if self.keep:
                self.report.kept = True
            else:
                self._drained()
                self._terminated()
        except _Failed:
            pass
        except (_Interrupted, KeyboardInterrupt):
            self.report.interrupted = True
        finally:
            self._cleanup()
        return self.report

    # -- helpers --------------------------------------------------------------------------
    @contextmanager
    def _phase(self, phase: Phase) -> Iterator[PhaseResult]:
        result = self.report.phase(phase)
        result.state, started = PhaseState.ACTIVE, self.clock()
        self._emit(result, 0.0)
        try:
            yield result
            result.state = PhaseState.PASSED
        except _Failed as exc:
            result.state, result.detail = PhaseState.FAILED, exc.detail
            raise
        except CsctlError as exc:  # a cloud or the pool failed us: this phase failed
            result.state, result.detail = PhaseState.FAILED, exc.message
            raise _Failed(exc.message) from None
        except (_Interrupted, KeyboardInterrupt):
            result.state, result.detail = PhaseState.FAILED, "interrupted"
            raise
        except Exception as exc:  # a bug or an untranslated SDK error: fail, clean up, tell
            log.warning("image test %s: %s failed unexpectedly", self.spec.label, phase.label, exc_info=True)
            result.state, result.detail = PhaseState.FAILED, f"unexpected error: {exc}"
            raise _Failed(result.detail) from None
        finally:
            result.seconds = round(self.clock() - started, 1)
            self._emit(result, result.seconds)

    def _emit(self, result: PhaseResult, seconds: float) -> None:
        self.progress(PhaseEvent(self.spec.label, result.phase, result.state, seconds, result.detail))

    def _wait(self, timeout: float, check: Callable[[], T | None], what: str) -> T:
        deadline = self.clock() + timeout
        while True:
            if self.stop.is_set():
                raise _Interrupted()
            found = check()
            if found is not None:
                return found
            if self.clock() >= deadline:
                raise _Failed(f"timed out after {timeout:g} s {what}")
            self.sleep(self.poll)

    def _listed(self) -> Instance | None:
        found = [i for i in self.cloud.list_instances(self.config.pool.name) if i.csctl_id == self.csctl_id]
        return found[0] if found and found[0].state is not VMState.DELETED else None

    def _slots(self) -> list[StartdSlot]:
        return [s for s in self.pool.csctl_slots() if s.csctl_id == self.csctl_id]

    @property
    def csctl_id(self) -> str:
        assert self.report.csctl_id is not None
        return self.report.csctl_id

    # -- the phases -----------------------------------------------------------------------
    def _request(self) -> None:
        with self._phase(Phase.REQUESTED):
            batch = new_batch_id(self.spec.cloud)
            self.report.csctl_id = vm_id(batch, 0)
            config = probe_config(self.config, self.spec, self.csctl_id)
            batch_key = derive_vm_key(self.pool_key, batch).secret
            self.secrets = [batch_key.decode(), base64.b64encode(scramble(batch_key)).decode()]
            item = BootItem(self.spec.cloud, self.spec.vm_type, 1, self.spec.image, self.spec.flavor)
            request = boot_request(config, self.cloud, item, self.pool_key, self.now(), batch, 1)
            request = dataclasses.replace(request, tags={**request.tags, TAG_IMAGE_TEST: self.csctl_id})
            started = self.cloud.boot(request)
            if not started:
                raise _Failed("the cloud started no VM")
            self.instance = started[0]
            self.report.csctl_id = self.instance.csctl_id

    def _running(self) -> None:
        def started() -> Instance | None:
            inst = self._listed()
            if inst is None:
                raise _Failed("the cloud no longer lists the VM")
            if inst.state is VMState.ERROR:
                raise _Failed(f"the cloud says the VM failed: {inst.fault or 'no reason given'}")
            # stopped: the cloud started it and the guest stopped; the join will tell why
            return inst if inst.state in (VMState.RUNNING, VMState.STOPPED) else None

        with self._phase(Phase.RUNNING):
            self.instance = self._wait(self.timeouts.boot, started, "for the cloud to start the VM")

    def _joined(self) -> None:
        def joined() -> list[StartdSlot] | None:
            slots = self._slots()
            if slots:
                return slots
            inst = self._listed()
            if inst is None or inst.state in (VMState.STOPPED, VMState.ERROR):
                state = inst.state.value if inst else "gone"
                raise _Failed(f"the VM is {state} and never joined (its contextualization failed?)")
            return None

        with self._phase(Phase.JOINED):
            self._wait(self.timeouts.join, joined, "for the VM's startd to join the pool")

    def _job_state(self, done: Callable[[ProbeStatus], bool]) -> Callable[[], ProbeStatus | None]:
        def check() -> ProbeStatus | None:
            assert self.report.job_id is not None
            status = self.probes.status(self.report.job_id)
            if status.code is None or status.code == REMOVED:
                raise _Failed("the probe job left the queue (removed)")
            if status.code == HELD and status.hold_code != SPOOLING_HOLD_CODE:
                raise _Failed(f"the probe job is held: {status.hold_reason or 'no reason given'}")
            if done(status):
                return status
            self.probes.nudge()
            return None

        return check

    def _matched(self) -> None:
        with self._phase(Phase.MATCHED):
            lifetime = int(self.timeouts.job) + 300
            self.report.job_id = self.probes.submit(ProbeJob(self.csctl_id, self.site_script, lifetime))
            self.probes.nudge()
            check = self._job_state(lambda s: s.code in (RUNNING, COMPLETED, TRANSFERRING, SUSPENDED))
            self._wait(self.timeouts.job, check, "for the probe job to start on the VM")

    def _finished(self) -> None:
        with self._phase(Phase.FINISHED):
            check = self._job_state(lambda s: s.code == COMPLETED)
            status = self._wait(self.timeouts.job, check, "for the probe job to finish")
            assert self.report.job_id is not None
            text = redact(self.probes.output(self.report.job_id), self.secrets)
            self.probes.remove(self.report.job_id)
            self.report.job_id = None
            probe = parse_probe(text, status.exit_code)
            self.report.probe = probe
            self.report.checks = compare(
                self.config.vm_types.get(self.spec.vm_type) if self.spec.promised else None, probe
            )
            if status.exit_signal is not None:
                raise _Failed(f"the probe job was killed by signal {status.exit_signal}")
            if probe.site_exit:
                raise _Failed(f"the probe script exited with {probe.site_exit}")
            if status.exit_code:
                raise _Failed(f"the probe job exited with {status.exit_code}")
            if probe.values.get("ad.CsctlId") != self.csctl_id:
                raise _Failed(f"the probe ran on {probe.values.get('ad.CsctlId') or 'an unknown machine'}")

    def _drained(self) -> None:
        def drained() -> bool | None:
            slots = self._slots()
            if any(s.in_use for s in slots):
                return None
            return True if not slots or any(s.draining or s.state == "Drained" for s in slots) else None

        with self._phase(Phase.DRAINED):
            assert self.instance is not None
            view = VMView(
                self.csctl_id, self.spec.cloud, self.spec.vm_type, Status.IDLE, self.instance, self._slots()
            )
            target = drain_target(view, self.config, self.pool_key, self.now())
            if target is None:
                raise _Failed("the pool shows no startd address to drain")
            error = self.pool.drain([target], reason="csctl image-test").get(self.csctl_id)
            if error:
                raise _Failed(error)
            self._wait(self.timeouts.drain, drained, "for the VM to drain")

    def _terminated(self) -> None:
        def gone() -> bool | None:
            return True if self._listed() is None else None

        with self._phase(Phase.TERMINATED):
            assert self.instance is not None
            if self.csctl_id not in self.cloud.terminate([self.instance]):
                raise _Failed("the cloud did not accept the termination")
            self.terminated = True
            self._wait(self.timeouts.drain, gone, "for the cloud to delete the VM")

    # -- always ---------------------------------------------------------------------------
    def _cleanup(self) -> None:
        report = self.report
        for result in report.phases:
            if result.state is PhaseState.PENDING:
                result.state = PhaseState.SKIPPED
                result.detail = "kept (--keep)" if self.keep and result.phase >= Phase.DRAINED else ""
        failed = report.interrupted or report.failed_phase is not None
        if self.instance is None and report.csctl_id is not None:
            # the boot call failed or was interrupted: a VM it half-started may still be listed
            try:
                self.instance = self._listed()
            except CsctlError as exc:
                if report.interrupted:  # else the boot failed cleanly: the cloud started nothing
                    report.cleanup_errors.append(f"{report.csctl_id}: cannot look for it: {exc.message}")
        if failed and self.instance is not None:
            self._save_console(self.instance)
        if self.keep:
            report.kept = self.instance is not None
            return
        if report.job_id is not None:
            try:
                self.probes.remove(report.job_id)
                report.job_id = None
            except CsctlError as exc:
                report.cleanup_errors.append(f"probe job {report.job_id}: {exc.message}")
        if self.instance is not None and not self.terminated:
            try:
                if self.csctl_id not in self.cloud.terminate([self.instance]):
                    report.cleanup_errors.append(f"{self.csctl_id}: the cloud did not accept the termination")
            except CsctlError as exc:
                report.cleanup_errors.append(f"{self.csctl_id}: {exc.message}")

    def _save_console(self, instance: Instance) -> None:
        try:
            text = self.cloud.console_output(instance)
        except CsctlError as exc:
            text = f"(console unavailable: {exc.message})"
        text = redact(text, self.secrets)
        failed = self.report.failed_phase
        header = f"csctl image-test: {instance.csctl_id} on {instance.cloud}: " + (
            f"failed at {failed.label}" if failed else "interrupted"
        )
        path = self.config.state_dir / "console" / f"{instance.csctl_id}-{self.now():%Y%m%dT%H%M%SZ}.log"
        try:
            write_atomically(path, f"{header}\n{text}\n".encode(), mode=0o600)
            self.report.console_path = str(path)
        except OSError as exc:
            self.report.cleanup_errors.append(f"cannot save the console to {path}: {exc.strerror}")
        self.report.console = "\n".join(text.splitlines()[-CONSOLE_LINES:])


def run_image_test(
    spec: ImageTestSpec,
    config: Config,
    cloud: Cloud,
    pool: DrainPool,
    probes: ProbeQueue,
    pool_key: SigningKey,
    *,
    timeouts: Timeouts = Timeouts(),
    keep: bool = False,
    site_script: bytes | None = None,
    progress: Callable[[PhaseEvent], None] = lambda event: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    poll: float = 2.0,
) -> ImageTestReport:
    """Boot one VM for ``spec``, follow it through every phase, and report.

    Each waiting phase has its own timeout; the first failure ends the test. On any
    failure (also a timeout, KeyboardInterrupt or ``stop`` being set) the VM's console is
    saved under STATE_DIR/console/ and in the report, secrets redacted. The VM and the
    probe job are always removed, unless ``keep``: then both are left and ``kept`` is set.
    """
    stop = stop or threading.Event()
    runner = _Runner(
        spec,
        config,
        cloud,
        pool,
        probes,
        pool_key,
        timeouts=timeouts,
        keep=keep,
        site_script=site_script,
        progress=progress,
        clock=clock,
        sleep=sleep or stop.wait,
        now=now,
        stop=stop,
        poll=poll,
    )
    return runner.run()


def run_image_tests(
    specs: Sequence[ImageTestSpec],
    config: Config,
    clouds: Mapping[str, Cloud],
    pool: DrainPool,
    probes: ProbeQueue,
    pool_key: SigningKey,
    **options: Any,
) -> list[ImageTestReport]:
    """Run several tests at once, one thread each (``options`` as for run_image_test).

    HTCondor calls are serialised (the bindings' configuration is process-wide). On
    KeyboardInterrupt every test is told to stop and cleans up; this waits for all of
    them (a second Ctrl-C too) and returns their reports, marked interrupted.
    """
    lock, stop = threading.Lock(), options.pop("stop", None) or threading.Event()
    locked_pool, locked_probes = _LockedPool(pool, lock), _LockedProbes(probes, lock)
    executor = ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="image-test")
    futures: list[Future[ImageTestReport]] = [
        executor.submit(
            run_image_test,
            spec,
            config,
            clouds[spec.cloud],
            locked_pool,
            locked_probes,
            pool_key,
            stop=stop,
            **options,
        )
        for spec in specs
    ]
    while True:
        try:
            while not all(f.done() for f in futures):
                wait_futures(futures, timeout=0.5)
            break
        except KeyboardInterrupt:
            stop.set()  # each test ends its phase, cleans up and reports
    executor.shutdown(wait=True)
    return [f.result() for f in futures]


class _LockedPool:
    def __init__(self, pool: DrainPool, lock: threading.Lock) -> None:
        self._pool, self._lock = pool, lock

    def csctl_slots(self) -> list[StartdSlot]:
        with self._lock:
            return self._pool.csctl_slots()

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        with self._lock:
            return self._pool.drain(targets, reason)


class _LockedProbes:
    def __init__(self, probes: ProbeQueue, lock: threading.Lock) -> None:
        self._probes, self._lock = probes, lock

    def submit(self, job: ProbeJob) -> str:
        with self._lock:
            return self._probes.submit(job)

    def status(self, job_id: str) -> ProbeStatus:
        with self._lock:
            return self._probes.status(job_id)

    def output(self, job_id: str) -> str:
        with self._lock:
            return self._probes.output(job_id)

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._probes.remove(job_id)

    def nudge(self) -> None:
        with self._lock:
            self._probes.nudge()
