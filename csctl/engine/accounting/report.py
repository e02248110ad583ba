"""``csctl accounting report``: usage over a period from the ledger, grouped one way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from csctl.engine.accounting.ledger import ledger_for_command
from csctl.engine.services import Services
from csctl.plan.accounting.report import UsageRow, usage


@dataclass
class UsageReport:
    """The report's rows (sorted by key), their total, and what it covers."""

    by: str
    since: datetime
    until: datetime
    rows: list[UsageRow]
    total: UsageRow
    warnings: list[str] = field(default_factory=list)


def usage_report(services: Services, since: datetime, until: datetime, by: str) -> UsageReport:
    """Provisioned and busy core-hours, VM-hours, jobs and CPU efficiency per ``by`` over
    ``[since, until)``, from the ledger."""
    now = services.now()
    ledger, warnings = ledger_for_command(services.state_dir, now)
    start, end = int(since.timestamp()), int(until.timestamp())
    with ledger:
        vms = ledger.vms(ended_since=start)
        totals = ledger.job_totals(start, end, by)
        ran = ledger.ran()
    rows, total = usage(vms, totals, ran, start, end, by, int(now.timestamp()))
    return UsageReport(by, since, until, rows, total, warnings)
