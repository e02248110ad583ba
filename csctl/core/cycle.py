"""One cycle of the scheduler: join-check --fix, demand, boot, retire, on one snapshot.

Safe under cron: a lock keeps two cycles from overlapping, and because every cycle
rebuilds its view from the pool and the clouds, a cycle killed at any point leaves
nothing the next one cannot see and finish (VMs are found by their tags, half-made
local VMs by their instance record).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from csctl.clouds.base import Cloud
from csctl.config import Config
from csctl.core.boot import BootReport, execute_boot
from csctl.core.demand import compute_demand
from csctl.core.lifecycle import FixReport, RetireReport, execute_retire, fix_failed_joins
from csctl.core.placement import plan_boot
from csctl.core.reconcile import reconcile
from csctl.core.retire import plan_retire
from csctl.core.state import Backoff, write_atomically
from csctl.core.tokens import SigningKey
from csctl.core.world import supply, take_snapshot
from csctl.errors import LockHeld
from csctl.pool import Pool

SCHEMA = "csctl.cycle/1"
LOCK_FILE = "run.lock"


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    idle_jobs: int = 0
    unservable_jobs: int = 0
    vms: dict[str, dict[str, int]] = field(default_factory=dict)  # cloud -> status -> count
    booted: int = 0
    drained: int = 0
    terminated: int = 0
    boot_failures: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    schema: str = SCHEMA

    @property
    def partial(self) -> bool:
        return bool(self.errors)

    def summary(self) -> str:
        """The one line a cron log wants."""
        running = sum(n for per in self.vms.values() for n in per.values())
        text = (
            f"{self.idle_jobs} idle jobs, {running} VMs, booted {self.booted}, drained {self.drained}, "
            f"terminated {self.terminated} in {self.seconds:.2f} s"
        )
        return text + (f"; {len(self.errors)} error(s)" if self.errors else "")


@contextmanager
def cycle_lock(state_dir: Path) -> Iterator[None]:
    """Hold STATE_DIR/run.lock for the cycle; LockHeld at once if another csctl holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockHeld(
                f"another csctl run holds {path} (pid {holder})",
                hint="cycles must not overlap; this one exits without acting",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies


def run_cycle(
    config: Config,
    pool: Pool,
    clouds: Mapping[str, Cloud],
    key: SigningKey,
    backoff: Backoff,
    now: datetime,
) -> tuple[CycleReport, FixReport, BootReport, RetireReport]:
    """join-check --fix, demand, boot and retire on one snapshot of the world."""
    clock = _Clock()
    snapshot = take_snapshot(pool, clouds, config)
    clock.lap("snapshot")
    joins = reconcile(snapshot.instances, snapshot.slots, config, now, snapshot.failed_clouds)
    fixed = fix_failed_joins(joins, clouds, config, backoff, now)
    gone = set(fixed.terminated)
    snapshot.instances = [i for i in snapshot.instances if i.csctl_id not in gone]
    clock.lap("join-check")
    demand = compute_demand(snapshot.groups, supply(snapshot, config), config)
    clock.lap("demand")
    plan = plan_boot(demand, snapshot.instances, config, backoff.active(now), now, snapshot.failed_clouds)
    booted = execute_boot(plan, clouds, config, key, now, backoff)
    clock.lap("boot")
    retire_plan = plan_retire(joins, demand, config, now)
    retired = execute_retire(retire_plan, joins, pool, clouds, config, key, now)
    clock.lap("retire")

    report = CycleReport(
        idle_jobs=demand.idle_jobs,
        unservable_jobs=sum(r.jobs for r in demand.rejected),
        booted=booted.started,
        drained=len(retired.drained),
        terminated=len(retired.terminated) + len(fixed.terminated),
        boot_failures=sum(1 for o in booted.outcomes if o.error),
        errors=snapshot.errors
        + fixed.errors
        + [o.error for o in booted.outcomes if o.error]
        + retired.errors,
    )
    for vm in joins.vms:
        if vm.csctl_id not in gone and vm.csctl_id not in retired.terminated:
            per_cloud = report.vms.setdefault(vm.cloud, {})
            per_cloud[vm.status.value] = per_cloud.get(vm.status.value, 0) + 1
    report.phases = clock.laps
    report.seconds = sum(clock.laps.values())
    return report, fixed, booted, retired


class _Clock:
    """Seconds spent per phase of a cycle."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.laps[phase] = round(now - self._last, 3)
        self._last = now


def write_metrics(path: Path, report: CycleReport, now: datetime) -> None:
    """The cycle as a Prometheus textfile (node_exporter's textfile collector), atomically."""
    lines = [
        "# HELP csctl_idle_jobs Idle jobs in the pool at the last cycle.",
        "# TYPE csctl_idle_jobs gauge",
        f"csctl_idle_jobs {report.idle_jobs}",
        "# HELP csctl_unservable_jobs Idle jobs no configured VM type can serve.",
        "# TYPE csctl_unservable_jobs gauge",
        f"csctl_unservable_jobs {report.unservable_jobs}",
        "# HELP csctl_vms csctl VMs by cloud and status.",
        "# TYPE csctl_vms gauge",
    ]
    for cloud, per in sorted(report.vms.items()):
        lines += [f'csctl_vms{{cloud="{cloud}",status="{s}"}} {n}' for s, n in sorted(per.items())]
    for name, value, text in (
        ("booted", report.booted, "VMs booted by the last cycle."),
        ("drained", report.drained, "VMs drained by the last cycle."),
        ("terminated", report.terminated, "VMs terminated by the last cycle."),
        ("boot_failures", report.boot_failures, "Boot requests that failed in the last cycle."),
        ("errors", len(report.errors), "Errors (clouds, schedds) in the last cycle."),
        ("cycle_seconds", round(report.seconds, 3), "Wall time of the last cycle."),
        ("last_cycle_timestamp_seconds", int(now.timestamp()), "When the last cycle ran."),
    ):
        lines += [f"# HELP csctl_{name} {text}", f"# TYPE csctl_{name} gauge", f"csctl_{name} {value}"]
    write_atomically(path, ("\n".join(lines) + "\n").encode(), mode=0o644)
