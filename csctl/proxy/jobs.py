"""Which queued jobs need a new proxy: the pure half of ``csctl delegate-proxy --refresh-jobs``.

The schedd reads each job's proxy file and keeps its end in the job ad
(``x509UserProxyExpiration``). plan_refresh picks a user's idle and running jobs whose
proxy ends before now + threshold, from those ads alone; the types here also carry what
became of each job once csctl.proxy.refresh has acted on the plan.

Nothing here reads a file, a clock or a schedd: every input is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from csctl.errors import InputError
from csctl.proxy.credentials import bounded, parse_hours_minutes, whole

IDLE, RUNNING = 1, 2
STATUS_NAMES = {IDLE: "idle", RUNNING: "running"}
PROJECTION = [
    "ClusterId",
    "ProcId",
    "Owner",
    "JobStatus",
    "x509userproxy",
    "x509UserProxyExpiration",
    "SUBMIT_x509userproxy",  # set by the schedd when it spooled the job's proxy
]
DEFAULT_THRESHOLD = timedelta(hours=6)
NOT_SPOOLED = (
    "; its proxy is not in the schedd's spool (submitted without spooling), and the schedd "
    "refreshes only spooled proxies: renew its x509userproxy file in place"
)
_OWNER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.$-]*")
_DURATION_PART = re.compile(r"([0-9]+)([dhms])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class ProxyJob:
    """A queued job that carries a proxy, as its schedd describes it."""

    schedd: str
    cluster: int
    proc: int
    owner: str
    status: str
    proxy: str
    expires: datetime | None  # None: the schedd could not read the proxy's end
    spooled: bool  # the schedd holds the proxy in its SPOOL: the only kind it refreshes

    @property
    def id(self) -> str:
        """``cluster.proc``, as condor_q prints it."""
        return f"{self.cluster}.{self.proc}"


@dataclass(frozen=True)
class RefreshPlan:
    """Which of the owner's jobs need a new proxy (``due``) and which are left alone."""

    owner: str
    deadline: datetime
    due: list[ProxyJob]
    fresh: list[ProxyJob]
    errors: list[str] = field(default_factory=list)  # one per schedd that could not be asked


class Outcome(StrEnum):
    """What happened to one job."""

    PLANNED = "would refresh"  # dry run
    REFRESHED = "refreshed"
    FAILED = "failed"
    GONE = "gone"  # left the queue (or idle/running) between query and refresh: nothing to do


@dataclass(frozen=True)
class JobResult:
    """One job of the plan and what became of it."""

    job: ProxyJob
    outcome: Outcome
    expires: datetime | None = None  # the new proxy's end, once refreshed
    error: str | None = None


@dataclass(frozen=True)
class RefreshReport:
    """The plan, the new proxy's end (None if none was made) and one result per due job."""

    plan: RefreshPlan
    dry_run: bool
    proxy_expires: datetime | None
    results: list[JobResult]
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when a job's refresh failed or a schedd could not be asked."""
        return bool(self.plan.errors) or any(r.outcome is Outcome.FAILED for r in self.results)


def parse_threshold(text: str) -> timedelta:
    """``6h``, ``90m``, ``1d``, ``1h30m``, ``3600s`` or ``H:M`` (as --valid takes it)."""
    if ":" in text:
        return parse_hours_minutes("--threshold", text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InputError(f"--threshold: expected a duration such as 6h, 90m or 1d, got {text!r}")
    seconds = sum(whole(n) * _SECONDS[u] for n, u in parts)  # an int: no overflow however long
    return bounded("--threshold", seconds, text)


def check_owner(owner: str) -> str:
    """``owner`` if it is a plausible user name (it goes into a ClassAd constraint)."""
    if not _OWNER.fullmatch(owner):
        raise InputError(f"--owner: not a user name: {owner!r}")
    return owner


def _expiry(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


def proxy_job(schedd: str, ad: Mapping[str, Any]) -> ProxyJob | None:
    """The job of ``ad``, or None unless it is idle or running with a proxy."""
    status = ad.get("JobStatus")
    proxy = ad.get("x509userproxy")
    if status not in STATUS_NAMES or not isinstance(proxy, str) or not proxy:
        return None
    return ProxyJob(
        schedd=schedd,
        cluster=int(ad["ClusterId"]),
        proc=int(ad["ProcId"]),
        owner=str(ad.get("Owner", "")),
        status=STATUS_NAMES[status],
        proxy=proxy,
        expires=_expiry(ad.get("x509UserProxyExpiration")),
        spooled=isinstance(ad.get("SUBMIT_x509userproxy"), str),
    )


def plan_refresh(
    ads: Mapping[str, Sequence[Mapping[str, Any]]], owner: str, now: datetime, threshold: timedelta
) -> RefreshPlan:
    """``owner``'s jobs (ads by schedd name) whose proxy ends before ``now + threshold``.

    A job whose proxy end the schedd does not know (it could not read the file) is due:
    a readable proxy is what it lacks.
    """
    deadline = now + threshold
    due: list[ProxyJob] = []
    fresh: list[ProxyJob] = []
    for schedd, schedd_ads in ads.items():
        for ad in schedd_ads:
            job = proxy_job(schedd, ad)
            if job is None or job.owner != owner:
                continue
            (fresh if job.expires is not None and job.expires >= deadline else due).append(job)
    due.sort(key=lambda j: (j.expires or datetime.min.replace(tzinfo=UTC), j.schedd, j.cluster, j.proc))
    return RefreshPlan(owner=owner, deadline=deadline, due=due, fresh=fresh)


def dry_run_report(plan: RefreshPlan) -> RefreshReport:
    """What ``--dry-run`` shows: every due job as PLANNED; an unspooled one says why it
    would fail, since the schedd refreshes only spooled proxies."""
    results = [
        JobResult(job, Outcome.PLANNED, error=None if job.spooled else NOT_SPOOLED.lstrip("; "))
        for job in plan.due
    ]
    return RefreshReport(plan=plan, dry_run=True, proxy_expires=None, results=results)
