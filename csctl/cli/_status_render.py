"""The rich layout of ``csctl status``: a table of clouds, then demand and the last cycle."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from csctl.engine.status import CloudStatus, StatusReport


def render(report: StatusReport) -> RenderableType:
    """Everything on one screen, most urgent first: service downtime and errors on top."""
    parts: list[RenderableType] = [Text(f"csctl status at {report.time[:19]} UTC", style="bold")]
    if report.service_downtime:
        parts.append(Text(f"SERVICE DOWNTIME: {report.service_downtime}", style="bold red"))
    parts += [Text(f"error: {e}", style="red") for e in report.errors]
    parts.append(_clouds(report.clouds))
    parts.append(Text(_demand(report.demand)))
    parts.append(Text(_last_cycle(report.last_cycle)))
    parts.append(Text(_ledger(report.ledger)))
    parts += [Text(f"warning: {w}", style="yellow") for w in report.warnings]
    return Group(*parts)


def _ledger(ledger: dict[str, Any] | None) -> str:
    if ledger is None:
        return "last 24 h: no accounting ledger yet (csctl run starts it)"
    used = ledger["utilisation"]
    share = "-" if used is None else f"{used:.0%}"
    return (
        f"last 24 h: utilisation {share} ({ledger['busy_core_hours']:,.1f} of "
        f"{ledger['provisioned_core_hours']:,.1f} core-hours busy), {ledger['vm_hours']:,.1f} VM-hours, "
        f"{ledger['jobs']} jobs, {ledger['never_ran_a_job']} VM(s) never ran a job"
    )


def _clouds(clouds: list[CloudStatus]) -> Table:
    table = Table(title="clouds", title_justify="left", expand=False)
    for column in ("cloud", "enabled", "VMs", "used / limit", "quota left", "backoff", "downtime"):
        table.add_column(column, overflow="fold")
    for c in clouds:
        enabled = "yes" if c.enabled else ("no" if c.configured else "left config")
        table.add_row(c.name, enabled, _vms(c), _used(c), _quota(c), _backoff(c), _downtime(c))
    return table


def _vms(c: CloudStatus) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(c.vms.items())) or "none"


def _used(c: CloudStatus) -> str:
    def one(key: str, unit: str) -> str:
        limit = c.limits.get(key)
        return f"{c.used.get(key, 0)}/{'-' if limit is None else limit} {unit}"

    return f"{one('vms', 'VMs')}, {one('cores', 'cores')}"


def _quota(c: CloudStatus) -> str:
    if c.quota_error:
        return f"? ({c.quota_error})"
    if not c.quota or all(v is None for v in c.quota.values()):
        return "not reported"
    return ", ".join(f"{v} {k.replace('_mb', ' MB')}" for k, v in c.quota.items() if v is not None)


def _backoff(c: CloudStatus) -> str:
    lines = []
    if c.backoff_until:
        lines.append(f"until {c.backoff_until[11:19]} ({c.backoff_failures} failures)")
    lines += [f"image {image} until {until[11:19]}" for image, until in sorted(c.backoff_images.items())]
    return "\n".join(lines) or "-"


def _downtime(c: CloudStatus) -> str:
    lines = []
    if c.downtime_active:
        lines.append(f"NOW: {c.downtime_active}")
    if c.downtime_next:
        lines.append(f"next: {c.downtime_next}")
    return "\n".join(lines) or "-"


def _demand(demand: dict[str, Any]) -> str:
    needed = ", ".join(f"{n} {t}" for t, n in sorted(demand.get("vms_needed", {}).items())) or "none"
    return (
        f"demand: {demand.get('idle_jobs', 0)} idle jobs ({demand.get('unservable_jobs', 0)} unservable); "
        f"new VMs needed: {needed}"
    )


def _last_cycle(last: dict[str, Any] | None) -> str:
    if last is None:
        return "last cycle: none recorded in the state directory"
    took = f", {last['seconds']:.1f} s" if isinstance(last.get("seconds"), int | float) else ""
    started = str(last.get("started", "?"))[:19]
    return f"last cycle: {started}{took}, exit {last.get('exit_code')}: {last.get('summary', '')}"
