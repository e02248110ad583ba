"""Keep queued jobs' proxies fresh: the acting half of ``csctl delegate-proxy --refresh-jobs``.

find_due_jobs asks each schedd for the owner's jobs and plans with
csctl.proxy.jobs.plan_refresh; apply_refresh makes ONE new proxy from the user's
credential, writes it 0600 and sends it to the schedd job by job. A job that fails does
not stop the others. A job whose proxy the schedd does not hold in its SPOOL cannot be
refreshed this way: renew its file in place instead (see csctl.proxy.schedd).

Nothing here imports click, rich or htcondor: schedds come in as ProxySchedd objects
(csctl.proxy.schedd.pool_schedds adapts the htcondor bindings), the clock and the proxy
maker as arguments. csctl.engine.proxy wires them to the configured pool.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from csctl.errors import CsctlError, PoolUnreachable
from csctl.proxy.files import proxy_file_bytes, write_private
from csctl.proxy.issuer import Issuer
from csctl.proxy.jobs import (
    DEFAULT_THRESHOLD,
    NOT_SPOOLED,
    JobResult,
    Outcome,
    ProxyJob,
    RefreshPlan,
    RefreshReport,
    check_owner,
    dry_run_report,
    parse_threshold,
    plan_refresh,
)
from csctl.proxy.model import DEFAULT_BITS, NewProxy
from csctl.proxy.schedd import JobGone, ProxySchedd


def default_owner() -> str:
    """The invoking user's name, as the schedd knows local users."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return getpass.getuser()


@dataclass(frozen=True)
class RefreshSettings:
    """What one refresh does: whose jobs, how close to its end a proxy may come, and the
    proxy to send (made by ``issuer`` with a ``bits`` key, kept in ``out`` if given)."""

    issuer: Issuer
    owner: str
    threshold: timedelta = DEFAULT_THRESHOLD
    bits: int = DEFAULT_BITS
    out: Path | None = None
    dry_run: bool = False

    @classmethod
    def resolve(
        cls,
        issuer: Issuer,
        *,
        owner: str | None = None,
        threshold: str | None = None,
        bits: int = DEFAULT_BITS,
        out: Path | None = None,
        dry_run: bool = False,
    ) -> RefreshSettings:
        """Settings from the user's words: ``owner`` defaults to the invoking user and must
        be a user name; ``threshold`` (``6h``, ``90m``...) defaults to 6 hours.

        Raises InputError for a bad owner or threshold.
        """
        return cls(
            issuer=issuer,
            owner=check_owner(owner or default_owner()),
            threshold=parse_threshold(threshold) if threshold else DEFAULT_THRESHOLD,
            bits=bits,
            out=out,
            dry_run=dry_run,
        )


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
        return dry_run_report(plan)
    return apply_refresh(plan, schedds, make, out)
