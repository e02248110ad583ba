"""``csctl accounting report``: usage over a period from the ledger, grouped one way."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from csctl.engine.accounting.ledger import (
    LEDGER_FILE,
    Ledger,
    NotALedger,
    ledger_for_command,
    read_only_ledger,
)
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
    with ledger:
        rows, total = _usage(ledger, int(since.timestamp()), int(until.timestamp()), by, now)
    return UsageReport(by, since, until, rows, total, warnings)


def _usage(ledger: Ledger, start: int, end: int, by: str, now: datetime) -> tuple[list[UsageRow], UsageRow]:
    """The ledger's rows and total over ``[start, end)``, grouped ``by``."""
    vms = ledger.vms(ended_since=start)
    totals = ledger.job_totals(start, end, by)
    return usage(vms, totals, ledger.ran(), start, end, by, int(now.timestamp()))


RECENT = timedelta(hours=24)


def recent_usage(state_dir: Path, now: datetime) -> tuple[dict[str, Any] | None, list[str]]:
    """The ledger's totals over the last 24 h, for ``csctl status``: provisioned and busy
    core-hours, utilisation, VM-hours, jobs, VMs that never ran a job. The ledger is only
    read: None (and no warning) when there is none yet; a ledger that cannot be read is a
    warning (the next ``run`` sets it aside), not a failure of the status screen."""
    path = state_dir / LEDGER_FILE
    if not os.path.lexists(path):
        return None, []
    start, end = int((now - RECENT).timestamp()), int(now.timestamp())
    try:
        with read_only_ledger(path) as ledger:
            _, total = _usage(ledger, start, end, "type", now)
    except (OSError, sqlite3.Error, NotALedger) as exc:
        return None, [f"{path}: cannot read the ledger ({exc})"]
    utilisation = total.utilisation
    return {
        "since": (now - RECENT).isoformat(),
        "provisioned_core_hours": round(total.provisioned_core_hours, 2),
        "busy_core_hours": round(total.busy_core_hours, 2),
        "utilisation": None if utilisation is None else round(utilisation, 4),
        "vm_hours": round(total.vm_hours, 2),
        "jobs": total.jobs,
        "never_ran_a_job": total.never_ran_a_job,
    }, []
