"""The ledger and the APEL export at scale: 10,000 VMs and 1,000,000 finished jobs (no pool).

Rows: the first cycle's ledger update (10,000 VMs seen, a history of 1,000,000 jobs to
store), a steady cycle (the same VMs, nothing new), the cycle after all VMs ended, the
APEL export of every record (VMs spread over two months, so many are split), and the
usage report by owner. Target: ledger update plus APEL export under 10 s.

    .venv/bin/python benchmarks/accounting.py [--vms 10000] [--jobs 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from csctl.config import parse_config
from csctl.engine.accounting.apel import export_apel
from csctl.engine.accounting.record import update_ledger
from csctl.engine.accounting.report import usage_report
from csctl.engine.services import Services
from csctl.model import FinishedJob, Instance, JobHistory, Snapshot, VMState

TARGET_S = 10.0
START = datetime(2026, 1, 20, tzinfo=UTC)
CONFIG = """
state_dir = "{tmp}/state"
[pool]
name = "pool.bench"
collector = "127.0.0.1:1"
[clouds.A]
driver = "local"
work_dir = "{tmp}/vms"
[clouds.B]
driver = "local"
work_dir = "{tmp}/vms-b"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
benchmark = 11.2
images = {{ A = "img-a", B = "img-b" }}
[accounting]
site_name = "CA-BENCH"
benchmark_type = "HEPSPEC"
"""


class History:
    """A schedd history that hands out its jobs once, as the bindings would."""

    def __init__(self, jobs: list[FinishedJob]) -> None:
        self.jobs = jobs

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        jobs, self.jobs = self.jobs, []
        return JobHistory(jobs, {"bench": jobs[0].job} if jobs else dict(marks))


def world(vms: int, jobs: int) -> tuple[list[Instance], list[FinishedJob]]:
    """VMs booted over 20 days from January 20 (so many live into February), and their jobs."""
    instances = [
        Instance(
            f"{'ab'[i % 2]}-{i:08x}-0", "AB"[i % 2], "big", VMState.RUNNING, f"i-{i}",
            booted_at=START + timedelta(seconds=i * 20 * 86400 // vms), image="img",
        )
        for i in range(vms)
    ]  # fmt: skip
    finished = []
    for n in range(jobs):
        i, rank = n % vms, n // vms  # the VM's rank-th job: a VM serves a handful of owners in turn
        booted = instances[i].booted_at
        assert booted is not None
        ended = int(booted.timestamp()) + 3600 * (1 + rank % 24)
        owner, group = f"user{(i * 7 + rank % 5) % 97}", f"group{i % 7}"
        finished.append(
            FinishedJob(
                f"bench#{n}.0#1", "bench", instances[i].csctl_id, owner, group, 1, 3000, 2700.0, ended
            )
        )
    return instances, finished


def timed(label: str, rows: list[tuple[str, float, float, str]], action, note=lambda _: "") -> object:  # type: ignore[no-untyped-def]
    """Run ``action``; add its wall and CPU seconds (this process) to ``rows``."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    rows.append((label, time.perf_counter() - started, time.process_time() - cpu, note(result)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    args = parser.parse_args()
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(CONFIG.format(tmp=tmp))
        instances, finished = world(args.vms, args.jobs)
        now = START + timedelta(days=21)
        pool = History(finished)
        timed(f"ledger: first cycle ({args.vms:,} VMs, {args.jobs:,} jobs)", rows,
              lambda: update_ledger(config, pool, Snapshot(instances=instances), now))  # fmt: skip
        later = now + timedelta(minutes=5)
        timed("ledger: steady cycle (same VMs, no new jobs)", rows,
              lambda: update_ledger(config, pool, Snapshot(instances=instances), later))  # fmt: skip
        timed("ledger: cycle after every VM ended", rows,
              lambda: update_ledger(config, pool, Snapshot(), now + timedelta(minutes=10)))  # fmt: skip
        services = Services(config, clock=lambda: now + timedelta(minutes=15))
        timed("APEL export (every record, written to a dirq queue)", rows,
              lambda: export_apel(services, Path(tmp) / "outgoing", None, False),
              lambda r: f"{r.records:,} records, {len(r.messages)} messages")  # fmt: skip
        timed("APEL export again (nothing changed)", rows,
              lambda: export_apel(services, Path(tmp) / "outgoing", None, False),
              lambda r: f"{r.records:,} records")  # fmt: skip
        timed("report --by owner (one month)", rows,
              lambda: usage_report(services, START, START + timedelta(days=31), "owner"),
              lambda r: f"{len(r.rows)} rows")  # fmt: skip
        size = (Path(tmp) / "state" / "ledger.sqlite").stat().st_size
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'wall s':>7}  {'CPU s':>6}  note")
    for label, seconds, cpu, note in rows:
        print(f"{label:<{width}}  {seconds:7.2f}  {cpu:6.2f}  {note}")
    total = rows[0][1] + rows[3][1]
    verdict = "met" if total < TARGET_S else "MISSED"
    print(f"\nledger update + APEL export: {total:.2f} s wall (target {TARGET_S:.0f} s: {verdict})")
    print(f"ledger file: {size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
