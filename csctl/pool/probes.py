"""Probe jobs of ``csctl image-test`` on the pool's schedd, through the htcondor2 bindings."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from csctl.errors import PoolUnreachable
from csctl.model.imagetest import ProbeJob, ProbeStatus
from csctl.pool.htcondor import HTCondorPool

T = TypeVar("T")


class ScheddProbeQueue:
    """Probe jobs on the pool's schedd (the first of pool.schedds, else the first the
    collector knows), submitted by this process's HTCondor client identity.

    The job is spooled: its script goes to the schedd and its output comes back with
    ``retrieve``, so csctl need not share a filesystem with the schedd.
    """

    def __init__(self, pool: HTCondorPool) -> None:
        self.pool = pool
        self.htcondor = pool.htcondor
        self._schedd: Any = None
        self._dirs: dict[str, tempfile.TemporaryDirectory[str]] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self.htcondor.HTCondorException as exc:
            raise PoolUnreachable(f"schedd: cannot {what}: {exc}") from None

    def schedd(self) -> Any:
        """The first configured schedd, else the first the collector knows."""
        if self._schedd is None:
            ads = self.pool.schedd_ads()
            if not ads:
                raise PoolUnreachable(f"collector {self.pool.config.collector} knows no schedd to submit to")
            self._schedd = self.htcondor.Schedd(ads[0])
        return self._schedd

    def submit(self, job: ProbeJob) -> str:
        """Write the probe's files to a private directory and spool them with the job."""
        tmp = tempfile.TemporaryDirectory(prefix="csctl-probe-")
        workdir = Path(tmp.name)
        (workdir / "csctl-probe.sh").write_text(job.script)
        (workdir / "csctl-probe.sh").chmod(0o755)
        description = {
            **job.description,
            "executable": str(workdir / "csctl-probe.sh"),
            "initialdir": str(workdir),
            "output": "probe.out",
            "error": "probe.err",
        }
        if job.site_script is not None:
            (workdir / "csctl-site-probe").write_bytes(job.site_script)
            description["transfer_input_files"] = "csctl-site-probe"
        schedd = self.schedd()
        submit = self.htcondor.Submit(description)
        result = self._call("submit the probe job", lambda: schedd.submit(submit, count=1, spool=True))
        self._call("spool the probe's files", lambda: schedd.spool(result))
        job_id = f"{result.cluster()}.0"
        self._dirs[job_id] = tmp
        return job_id

    def status(self, job_id: str) -> ProbeStatus:
        cluster, proc = job_id.split(".")
        projection = ["JobStatus", "ExitCode", "HoldReason", "HoldReasonCode", "ExitBySignal", "ExitSignal"]
        ads = self._call(
            "query the probe job",
            lambda: self.schedd().query(f"ClusterId == {cluster} && ProcId == {proc}", projection),
        )
        if not ads:
            return ProbeStatus(None)
        ad = ads[0]
        signal = ad.get("ExitSignal") if ad.get("ExitBySignal") is True else None
        return ProbeStatus(
            int(ad.get("JobStatus", 0)),
            ad.get("ExitCode") if isinstance(ad.get("ExitCode"), int) else None,
            str(ad.get("HoldReason", "")) or None,
            ad.get("HoldReasonCode") if isinstance(ad.get("HoldReasonCode"), int) else None,
            signal if isinstance(signal, int) else None,
        )

    def output(self, job_id: str) -> str:
        """Fetch the job's output from the schedd's spool and read it."""
        self._call("retrieve the probe's output", lambda: self.schedd().retrieve(job_id))
        path = Path(self._dirs[job_id].name) / "probe.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self, job_id: str) -> None:
        self._call("remove the probe job", lambda: self.schedd().act(self.htcondor.JobAction.Remove, job_id))
        tmp = self._dirs.pop(job_id, None)
        if tmp is not None:
            tmp.cleanup()

    def nudge(self) -> None:
        self._call("ask for a negotiation", lambda: self.schedd().reschedule())
