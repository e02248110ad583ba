"""Keep queued jobs' proxies fresh: ``csctl delegate-proxy --refresh-jobs``.

The schedd reads each job's proxy file and keeps its end in the job ad
(``x509UserProxyExpiration``). plan_refresh picks a user's idle and running jobs
whose proxy ends before now + threshold; apply_refresh makes ONE new proxy from
the user's credential, writes it 0600 and sends it to the schedd job by job
(``Schedd.refreshGSIProxy``: the bindings offer one call per job). The schedd
replaces the job's spooled proxy and, for a running job, passes it on to the
starter on the VM. A job that fails does not stop the others.

The schedd only refreshes a proxy it holds in its SPOOL (jobs submitted with
spooling, as remote submitters do): for a job that reads its proxy from a shared
file system, the schedd refuses ("does not contain a gsi credential in SPOOL" in
its log); renew that file in place instead.

Nothing here imports click, rich or htcondor: schedds come in as ProxySchedd
objects (``pool_schedds`` adapts the htcondor bindings), the clock and the
proxy maker as arguments.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import pwd
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from csctl.errors import CredentialError, CsctlError, InputError, PoolUnreachable
from csctl.proxy.chain import default_trust_dir
from csctl.proxy.credentials import (
    Passphrase,
    default_cert_paths,
    load_credential,
    parse_lifetime,
    passphrase_from_fd,
)
from csctl.proxy.files import proxy_file_bytes, write_private
from csctl.proxy.issue import make_proxy
from csctl.proxy.model import DEFAULT_BITS, IssueOptions, NewProxy

if TYPE_CHECKING:
    from csctl.pool.htcondor import HTCondorPool

log = logging.getLogger(__name__)

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
_OWNER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.$-]*")
_DURATION_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}

# --------------------------------------------------------------------------- data


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


class JobGone(CsctlError):
    """The job is no longer in the queue (it finished or was removed)."""


class ProxySchedd(Protocol):
    """One schedd, as far as refreshing proxies needs it."""

    name: str

    def proxy_jobs(self, owner: str) -> list[Mapping[str, Any]]:
        """Ads (at least PROJECTION) of ``owner``'s idle and running jobs with an x509userproxy.

        Raises PoolUnreachable when the schedd cannot be queried.
        """
        ...

    def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
        """Make ``proxy_file`` the job's proxy; the schedd re-reads its expiry.

        Raises JobGone when the job has left the queue, CsctlError for any other refusal.
        """
        ...


# --------------------------------------------------------------------------- options


def parse_threshold(text: str) -> timedelta:
    """``6h``, ``90m``, ``1d``, ``1h30m``, ``3600s`` or ``H:M`` (as --valid takes it)."""
    if ":" in text:
        return parse_lifetime(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InputError(f"--threshold: expected a duration such as 6h, 90m or 1d, got {text!r}")
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())


def default_owner() -> str:
    """The invoking user's name, as the schedd knows local users."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


def check_owner(owner: str) -> str:
    """``owner`` if it is a plausible user name (it goes into a ClassAd constraint)."""
    if not _OWNER.fullmatch(owner):
        raise InputError(f"--owner: not a user name: {owner!r}")
    return owner


Prompt = Callable[[str], str]  # getpass.getpass: the command's terminal


def terminal_passphrase(key: Path, prompt: Prompt) -> Passphrase:
    """Ask for ``key``'s passphrase with ``prompt`` (only when the key is encrypted)."""

    def ask() -> bytes:
        try:
            return prompt(f"Enter pass phrase for {key}: ").encode()
        except EOFError as exc:
            raise CredentialError(
                f"{key}: private key is encrypted and no passphrase was given",
                hint="type it on a terminal or use --passphrase-fd",
            ) from exc

    return ask


@dataclass(frozen=True)
class Issuer:
    """The user's credential and the proxy to make of it, from the command's options."""

    cert: Path
    key: Path
    options: IssueOptions
    passphrase: Passphrase
    trust_dir: Path | None

    @classmethod
    def from_options(cls, opts: Mapping[str, Any], prompt: Prompt) -> Issuer:
        """From ``--cert --key --valid --limited --path-length --passphrase-fd --cert-dir``;
        without --passphrase-fd, an encrypted key's passphrase is asked with ``prompt``."""
        cert, key = default_cert_paths()
        key = opts["key"] or key
        fd = opts["passphrase_fd"]
        return cls(
            cert=opts["cert"] or cert,
            key=key,
            options=IssueOptions(parse_lifetime(opts["lifetime"]), opts["limited"], opts["path_length"]),
            passphrase=passphrase_from_fd(fd) if fd is not None else terminal_passphrase(key, prompt),
            trust_dir=opts["cert_dir"] or default_trust_dir(),
        )

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of make_proxy_file and sign_request_file."""
        return {
            "cert": self.cert,
            "key": self.key,
            "options": self.options,
            "passphrase": self.passphrase,
            "trust_dir": self.trust_dir,
        }

    def maker(self, bits: int = DEFAULT_BITS) -> Callable[[], NewProxy]:
        """A proxy maker for apply_refresh: loads the credential only when called."""

        def make() -> NewProxy:
            credential = load_credential(self.cert, self.key, self.passphrase)
            return make_proxy(credential, self.options, bits=bits, trust_dir=self.trust_dir)

        return make


# --------------------------------------------------------------------------- plan


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
    """Pure: ``owner``'s jobs (ads by schedd name) whose proxy ends before ``now + threshold``.

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


def find_due_jobs(
    schedds: Sequence[ProxySchedd], owner: str, now: datetime, threshold: timedelta
) -> RefreshPlan:
    """Ask every schedd for ``owner``'s proxy jobs and plan; a failing schedd is named in errors.

    Raises PoolUnreachable when no schedd answers.
    """
    ads: dict[str, list[Mapping[str, Any]]] = {}
    errors: list[str] = []
    for schedd in schedds:
        try:
            ads[schedd.name] = schedd.proxy_jobs(owner)
        except PoolUnreachable as exc:
            errors.append(exc.message)
    if schedds and not ads:
        raise PoolUnreachable("; ".join(errors))
    plan = plan_refresh(ads, owner, now, threshold)
    plan.errors.extend(errors)
    return plan


# --------------------------------------------------------------------------- apply

NOT_SPOOLED = (
    "; its proxy is not in the schedd's spool (submitted without spooling), and the schedd "
    "refreshes only spooled proxies: renew its x509userproxy file in place"
)


@contextlib.contextmanager
def _proxy_path(out: Path | None) -> Iterator[Path]:
    if out is not None:
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="csctl-proxy-") as tmp:  # mode 0700
        yield Path(tmp) / "x509up"


def apply_refresh(
    plan: RefreshPlan,
    schedds: Sequence[ProxySchedd],
    make: Callable[[], NewProxy],
    out: Path | None = None,
) -> RefreshReport:
    """Make one proxy with ``make``, write it 0600 to ``out`` (else a private temporary
    file, removed afterwards) and send it to each due job's schedd.

    No job due: nothing is made (no passphrase is asked). A CredentialError from
    ``make`` is raised before any schedd is contacted.
    """
    if not plan.due:
        return RefreshReport(plan=plan, dry_run=False, proxy_expires=None, results=[])
    made = make()
    expires = min(cert.not_valid_after_utc for cert in made.chain)
    by_name = {s.name: s for s in schedds}
    with _proxy_path(out) as path:
        write_private(path, proxy_file_bytes(made.chain, made.key))
        results = [_refresh_one(by_name[job.schedd], job, path, expires) for job in plan.due]
    return RefreshReport(
        plan=plan, dry_run=False, proxy_expires=expires, results=results, warnings=list(made.warnings)
    )


def _refresh_one(schedd: ProxySchedd, job: ProxyJob, path: Path, expires: datetime) -> JobResult:
    try:
        schedd.refresh_proxy(job.cluster, job.proc, path)
    except JobGone as exc:
        return JobResult(job, Outcome.GONE, error=exc.message)
    except CsctlError as exc:
        return JobResult(job, Outcome.FAILED, error=exc.message + ("" if job.spooled else NOT_SPOOLED))
    return JobResult(job, Outcome.REFRESHED, expires=expires)


def refresh_jobs(
    schedds: Sequence[ProxySchedd],
    *,
    owner: str,
    now: datetime,
    threshold: timedelta,
    make: Callable[[], NewProxy],
    out: Path | None = None,
    dry_run: bool = False,
) -> RefreshReport:
    """Plan, then (unless ``dry_run``) refresh: the whole of ``--refresh-jobs``."""
    plan = find_due_jobs(schedds, owner, now, threshold)
    if dry_run:
        results = [
            JobResult(job, Outcome.PLANNED, error=None if job.spooled else NOT_SPOOLED.lstrip("; "))
            for job in plan.due
        ]
        return RefreshReport(plan=plan, dry_run=True, proxy_expires=None, results=results)
    return apply_refresh(plan, schedds, make, out)


# --------------------------------------------------------------------------- htcondor


DELEGATION_HINT = (
    "if the SchedLog says 'X509Credential::Request() failed', the schedd cannot receive a "
    "delegated proxy (HTCondor built with OpenSSL >= 3.4 before the HTCONDOR-2904 fix): "
    'set DELEGATE_JOB_GSI_CREDENTIALS = "false" in pool.condor_params'
)


class _BindingsSchedd:
    """ProxySchedd over one ``htcondor2.Schedd``; htcondor errors become csctl errors."""

    def __init__(self, htcondor: Any, ad: Any) -> None:
        self.htcondor = htcondor
        self.name = str(ad.get("Name", "?"))
        self.schedd = htcondor.Schedd(ad)

    def proxy_jobs(self, owner: str) -> list[Mapping[str, Any]]:
        constraint = (
            f'Owner == "{check_owner(owner)}" && x509userproxy =!= undefined'
            f" && (JobStatus == {IDLE} || JobStatus == {RUNNING})"
        )
        try:
            return list(self.schedd.query(constraint, PROJECTION))
        except self.htcondor.HTCondorException as exc:
            log.debug("schedd %s failed", self.name, exc_info=True)
            raise PoolUnreachable(f"schedd {self.name}: {exc}") from None

    def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
        try:
            # lifetime 0: the schedd keeps the proxy's own end, never a shorter one
            self.schedd.refreshGSIProxy(cluster, proc, str(proxy_file), 0)
        except self.htcondor.HTCondorException as exc:
            log.debug("refresh of %s.%s failed", cluster, proc, exc_info=True)
            status = self._status(cluster, proc)
            if status is None:
                raise JobGone(f"job {cluster}.{proc} left the queue") from None
            if status not in STATUS_NAMES:
                raise JobGone(
                    f"job {cluster}.{proc} is no longer idle or running (JobStatus {status})"
                ) from None
            message = f"schedd {self.name} refused: {exc}".rstrip(": ")
            if "delegateGSIcredential" in str(exc):
                message += f" ({DELEGATION_HINT})"
            raise CsctlError(message) from None

    def _status(self, cluster: int, proc: int) -> int | None:
        try:
            ads = self.schedd.query(f"ClusterId == {cluster} && ProcId == {proc}", ["JobStatus"])
        except self.htcondor.HTCondorException:
            return IDLE  # cannot tell: report the refusal itself
        return int(ads[0]["JobStatus"]) if ads else None


def pool_schedds(pool: HTCondorPool) -> list[ProxySchedd]:
    """The pool's schedds (``pool.schedds`` in the configuration, else all the collector knows)."""
    ads = pool.schedd_ads()  # the same lookup idle_jobs uses
    if not ads:
        raise PoolUnreachable(f"collector {pool.config.collector} knows no schedd")
    return [_BindingsSchedd(pool.htcondor, ad) for ad in ads]


# --------------------------------------------------------------------------- the command


def refresh_from_options(
    pool: HTCondorPool, opts: Mapping[str, Any], now: datetime, prompt: Prompt
) -> RefreshReport:
    """``--refresh-jobs`` with the command's options (``--owner --threshold --dry-run --out``,
    the issuer's and ``--bits``), against the configured pool."""
    owner = check_owner(opts["owner"] or default_owner())
    threshold = parse_threshold(opts["threshold"]) if opts["threshold"] else DEFAULT_THRESHOLD
    return refresh_jobs(
        pool_schedds(pool),
        owner=owner,
        now=now,
        threshold=threshold,
        make=Issuer.from_options(opts, prompt).maker(opts["bits"]),
        out=opts["out"],
        dry_run=opts["dry_run"],
    )


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%SZ}" if at else "unknown"


def report_rows(report: RefreshReport) -> list[tuple[str, str, str, str, str, str]]:
    """(schedd, job, owner, status, proxy expires, result) per due job, for a table."""
    return [
        (r.job.schedd, r.job.id, r.job.owner, r.job.status, _when(r.job.expires), r.outcome.value)
        for r in report.results
    ]


def summary(report: RefreshReport) -> str:
    """One line: what was (or would be) done."""
    plan = report.plan
    left = f"{len(plan.fresh)} left alone (proxy valid past {_when(plan.deadline)})"
    if report.dry_run:
        return f"{len(plan.due)} job(s) of {plan.owner} would get a new proxy; {left}"
    if not plan.due:
        return f"no job of {plan.owner} needs a new proxy; {left}"
    counts = {o: sum(r.outcome is o for r in report.results) for o in Outcome}
    done = f"{counts[Outcome.REFRESHED]} refreshed, {counts[Outcome.FAILED]} failed"
    if counts[Outcome.GONE]:
        done += f", {counts[Outcome.GONE]} gone"
    return f"{done}; new proxy valid until {_when(report.proxy_expires)}; {left}"


def report_dict(report: RefreshReport) -> dict[str, Any]:
    """The report as ``--json`` prints it."""

    def job(r: JobResult) -> dict[str, Any]:
        j = r.job
        return {
            "schedd": j.schedd, "id": j.id, "owner": j.owner, "status": j.status,
            "proxy": j.proxy, "spooled": j.spooled,
            "expires": j.expires.isoformat() if j.expires else None,
            "result": r.outcome.value, "new_expires": r.expires.isoformat() if r.expires else None,
            "error": r.error,
        }  # fmt: skip

    return {
        "owner": report.plan.owner,
        "dry_run": report.dry_run,
        "deadline": report.plan.deadline.isoformat(),
        "proxy_expires": report.proxy_expires.isoformat() if report.proxy_expires else None,
        "jobs": [job(r) for r in report.results],
        "left_alone": len(report.plan.fresh),
        "errors": report.plan.errors,
        "warnings": report.warnings,
    }
