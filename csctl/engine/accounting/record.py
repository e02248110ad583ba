"""Each cycle's entry in the ledger: the VMs its snapshot saw (no cloud is asked again)
and the jobs the schedds' histories added since the last cycle (one projected query
per schedd, resumed from where the last one stopped).

Accounting never costs a cycle anything else: every failure here is one warning line,
and the cycle goes on.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime

from csctl.config import Config
from csctl.engine.accounting.ledger import LEDGER_FILE, Ledger, broken, open_ledger, set_aside
from csctl.errors import CsctlError
from csctl.model import JobHistory, Pool, Snapshot
from csctl.plan.accounting.usage import gone, sightings

log = logging.getLogger(__name__)

DAY = 86_400
PRUNED = "pruned"  # the ledger's meta key: when old rows were last forgotten


def update_ledger(config: Config, pool: Pool, snapshot: Snapshot, now: datetime) -> list[str]:
    """Update the ledger from the cycle's snapshot and the job histories; warnings only.
    A ledger found broken mid-update is set aside and this cycle recorded in a new one."""
    if not config.accounting.ledger:
        return []
    warnings: list[str] = []
    for attempt in (1, 2):
        try:
            ledger, opened = open_ledger(config.state_dir, now)
            warnings += opened
            with ledger:
                return warnings + _update(ledger, config, pool, snapshot, now)
        except sqlite3.Error as exc:
            if attempt == 1 and broken(exc):
                aside = set_aside(config.state_dir / LEDGER_FILE, now)
                warnings.append(f"ledger unreadable ({exc}); moved to {aside.name}, accounting starts anew")
                continue
            return warnings + [f"ledger not updated ({exc}); this cycle's accounting is lost"]
        except OSError as exc:
            return warnings + [f"ledger not updated ({exc.strerror or exc}); this cycle's accounting is lost"]
    return warnings


def _update(ledger: Ledger, config: Config, pool: Pool, snapshot: Snapshot, now: datetime) -> list[str]:
    epoch = int(now.timestamp())
    seen = sightings(snapshot, config, epoch)
    listed = ({i.cloud for i in snapshot.instances} | set(config.clouds)) - snapshot.failed_clouds
    history = _history(pool, ledger.marks())
    with ledger.transaction():  # the marks move on only with the jobs they stand for
        ledger.see(seen)
        ledger.end(gone(ledger.running(), (vm.csctl_id for vm in seen), listed))
        ledger.add_jobs(history.jobs)
        ledger.set_marks(history.marks)
        _prune(ledger, config.accounting.keep_days, epoch)
    return [f"accounting: {e}" for e in history.errors]


def _prune(ledger: Ledger, keep_days: int, epoch: int) -> None:
    """Once a day, forget what ended more than ``keep_days`` ago (0: keep everything). The
    sweep reads the whole jobs table, which one cycle a day can afford and every cycle not."""
    last = ledger.meta(PRUNED)
    if keep_days == 0 or (last is not None and last.isdigit() and epoch - int(last) < DAY):
        return
    vms, jobs = ledger.prune(epoch - keep_days * DAY)
    ledger.set_meta(PRUNED, str(epoch))
    if vms or jobs:
        log.info("ledger: forgot %d VMs and %d jobs that ended over %d days ago", vms, jobs, keep_days)


def _history(pool: Pool, marks: dict[str, str]) -> JobHistory:
    read = getattr(pool, "job_history", None)
    if read is None:  # a pool adapter written before the ledger: VMs are still recorded
        return JobHistory(marks=marks)
    try:
        history: JobHistory = read(marks)
    except CsctlError as exc:  # no schedd could be located: the VMs are still recorded
        return JobHistory(marks=marks, errors=[f"job history not read: {exc.message}"])
    return history
