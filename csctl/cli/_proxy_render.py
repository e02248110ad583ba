"""How ``csctl delegate-proxy`` shows a proxy file and a refresh report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from csctl.cli.app import Application
from csctl.errors import CredentialError
from csctl.proxy import proxy_info
from csctl.proxy.jobs import JobResult, Outcome, RefreshReport

REFRESH_COLUMNS = ["schedd", "job", "owner", "status", "proxy expires", "result"]


def show_proxy(app: Application, path: Path, trust_dir: Path | None) -> None:
    """Describe the proxy file at ``path`` as grid-proxy-info does (or as JSON); a proxy
    csctl finds wrong is shown, then reported as a CredentialError."""
    info = proxy_info(path, trust_dir=trust_dir)
    if app.console.json_output:
        app.console.print_json(info)
    else:
        left = info.seconds_left
        for label, value in [
            ("file", info.path),
            ("subject", info.subject),
            ("issuer", info.issuer),
            ("identity", info.identity),
            ("type", info.type.value),
            ("time left", f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"),
            ("valid until", f"{info.not_after:%Y-%m-%d %H:%M:%SZ}"),
        ]:
            app.console.result(f"{label:<11} : {value}")
        rows = [(c.type.value, c.subject, f"{c.not_after:%Y-%m-%d %H:%M}Z") for c in info.chain]
        app.console.table("chain", ["type", "subject", "valid until"], rows)
    if info.problem:
        raise CredentialError(info.problem)


def show_refresh(app: Application, report: RefreshReport) -> None:
    """Warnings and unreachable schedds on stderr; then a table of the due jobs, each job's
    error and a summary line (or the report as JSON)."""
    console = app.console
    for warning in report.warnings + report.plan.errors:
        console.warn(warning)
    if console.json_output:
        console.print_json(report_dict(report))
        return
    if report.results:
        console.table(None, REFRESH_COLUMNS, report_rows(report))
    for result in report.results:
        if result.error:
            console.result(f"job {result.job.id}: {result.error}")
    console.result(summary(report))


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
