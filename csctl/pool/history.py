"""Finished jobs from the schedds' job history, as the accounting ledger records them.

One projected history query per schedd, constrained to jobs that ran on a csctl VM and
resumed after the newest job the previous query returned (``since``). Values in the ads
are the submitters' and the schedds' words: read defensively, never trusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from csctl.model import FinishedJob, JobHistory
from csctl.plan import attributes as A
from csctl.pool.child import history_apart

# the machine's CsctlId copied into the job ad at match time (SYSTEM_JOB_MACHINE_ATTRS): the
# VM a job last ran on, where all of its time is counted
RAN_ON = f"MachineAttr{A.CSCTL_ID}0"
# RemoteWallClockTime covers all of a job's runs; CompletionDate is 0 for a removed job
PROJECTION = [
    "GlobalJobId", "ClusterId", "ProcId", "Owner", "AcctGroup", "RequestCpus", "CpusProvisioned",
    "RemoteWallClockTime", "RemoteUserCpu", "RemoteSysCpu", "CompletionDate", "EnteredCurrentStatus",
    RAN_ON,
]  # fmt: skip


JOB_ID = re.compile(r"([0-9]{1,15})\.([0-9]{1,15})")
EARLIEST, LATEST = 946_684_800, 4_102_444_800  # 2000-01-01 and 2100-01-01, UTC


def since(mark: str | None) -> Any:
    """Where a history scan stops: at the job of the mark (``cluster.proc``), as an
    expression. The bindings read a ``since`` string as a job id in some versions and as an
    expression in others; the expression means the same in all. None (read everything)
    for no mark, or one that is not a job id: the ledger keeps each job once."""
    import classad2

    job = JOB_ID.fullmatch(mark or "")
    if job is None:
        return None
    return classad2.ExprTree(f"ClusterId == {int(job[1])} && ProcId == {int(job[2])}")


def read_history(
    htcondor: Any, schedd_ad: Any, marks: Mapping[str, str], apart: Mapping[str, str] | None = None
) -> tuple[str, list[Any] | str]:
    """The schedd's name and its csctl jobs newer than its mark (newest first), or its error.
    ``apart``: read in a child process with these condor_params (csctl/pool/child.py)."""
    name = str(schedd_ad.get("Name", "?"))
    constraint, stop = f"{RAN_ON} =!= undefined", since(marks.get(name))
    try:
        if apart is not None:
            ads = history_apart(htcondor, schedd_ad, constraint, PROJECTION, stop, apart)
        else:
            ads = htcondor.Schedd(schedd_ad).history(constraint, PROJECTION, since=stop)
    except htcondor.HTCondorException as exc:
        return name, str(exc)
    return name, [a for a in ads if isinstance(a.get("ClusterId"), int) and isinstance(a.get("ProcId"), int)]


def collect(answers: Iterable[tuple[str, list[Any] | str]], marks: Mapping[str, str]) -> JobHistory:
    """The schedds' answers as one JobHistory: each schedd's mark moves to its newest job."""
    history = JobHistory(marks=dict(marks))
    for name, answer in answers:
        if isinstance(answer, str):
            history.errors.append(f"schedd {name}: job history: {answer}")
        elif answer:
            history.marks[name] = f"{answer[0]['ClusterId']}.{answer[0]['ProcId']}"
            history.jobs += [job for job in (finished_job(name, ad) for ad in answer) if job]
    return history


def finished_job(schedd: str, ad: Any) -> FinishedJob | None:
    """A history ad as the ledger records it; None when it lacks what accounting needs."""
    ended = _number(ad.get("CompletionDate")) or _number(ad.get("EnteredCurrentStatus"))
    csctl_id, job = ad.get(RAN_ON), ad.get("GlobalJobId")
    if not EARLIEST < ended < LATEST or not isinstance(csctl_id, str) or not isinstance(job, str):
        return None  # a time no job of csctl's can have: the ad is not to be believed
    group = ad.get("AcctGroup")
    return FinishedJob(
        job=job,
        schedd=schedd,
        csctl_id=csctl_id,
        owner=str(ad.get("Owner", "")),
        group=group if isinstance(group, str) else None,
        cores=int(_number(ad.get("CpusProvisioned")) or _number(ad.get("RequestCpus")) or 1),
        wall=int(min(_number(ad.get("RemoteWallClockTime")), ended - EARLIEST)),  # it ran after 2000
        cpu=_number(ad.get("RemoteUserCpu")) + _number(ad.get("RemoteSysCpu")),
        ended=int(ended),
    )


def _number(value: Any) -> float:
    """A non-negative finite number from an ad; 0 when absent, negative or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e15:
        return 0.0
    return float(value)
