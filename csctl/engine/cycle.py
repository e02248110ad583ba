"""One cycle of the scheduler: join-check --fix, demand, boot, retire, on one snapshot.

Safe under cron: a lock keeps two cycles from overlapping, and because every cycle
rebuilds its view from the pool and the clouds, a cycle killed at any point leaves
nothing the next one cannot see and finish (VMs are found by their tags, half-made
local VMs by their instance record).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from csctl.config import Config
from csctl.context.tokens import SigningKey
from csctl.engine.accounting.record import update_ledger
from csctl.engine.ahead import history_ahead, read_yet
from csctl.engine.boot import BootReport, execute_boot, plan_from_snapshot, resolve_image_urls
from csctl.engine.downtime import in_effect, publish_to
from csctl.engine.joincheck import FixReport, fix_failed_joins
from csctl.engine.judging import judge_apart
from csctl.engine.metrics import write_metrics
from csctl.engine.retire import RetireReport, execute_retire
from csctl.engine.services import Services
from csctl.engine.state import keep_backoff, read_backoff, state_lock
from csctl.engine.status import record_cycle
from csctl.engine.view import look, settle
from csctl.errors import CsctlError
from csctl.model import Cloud, Pool
from csctl.plan.backoff import Backoff
from csctl.plan.downtime import keep_out, retire_for_downtimes
from csctl.plan.placement import BootPlan
from csctl.plan.retire import Action, RetirePlan, plan_retire
from csctl.plan.supply import snapshot_demand

SCHEMA = "csctl.cycle/1"


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
    warnings: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # why nothing was terminated or drained
    downtime: list[str] = field(default_factory=list)  # what declared downtimes kept out or report
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


def run_cycle(
    config: Config,
    pool: Pool,
    clouds: Mapping[str, Cloud],
    key: SigningKey,
    backoff: Backoff,
    now: datetime,
) -> tuple[CycleReport, FixReport, BootReport, RetireReport]:
    """join-check --fix, demand, boot and retire on one snapshot of the world. When the
    pool's view is incomplete (the safety valve), nothing is terminated or drained and no
    failure is counted against an image; booting goes on. The ledger's job history is
    read while the snapshot is taken (csctl/engine/ahead.py)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csctl-history") as ahead:
        return _cycle(config, pool, clouds, key, backoff, now, history_ahead(config, pool, ahead), ahead)


def _cycle(
    config: Config,
    pool: Pool,
    clouds: Mapping[str, Cloud],
    key: SigningKey,
    backoff: Backoff,
    now: datetime,
    ledger_pool: Pool,
    ahead: ThreadPoolExecutor,
) -> tuple[CycleReport, FixReport, BootReport, RetireReport]:
    clock = _Clock()
    view = look(config, pool, clouds, now)
    if read_yet(ledger_pool):
        # the history is in: its thread ends, and a large queue may then be judged in
        # forked processes (csctl/engine/judging.py forks only a process of one thread)
        ahead.shutdown()
    snapshot, joins = view.snapshot, view.joins
    downtimes = in_effect(config, now)
    view.hold += downtimes.effects.hold()  # a service outage: nothing terminated or drained
    clock.lap("snapshot")
    fixed = FixReport() if view.hold else fix_failed_joins(joins, clouds, config, backoff, now, key)
    gone = set(fixed.terminated)
    snapshot.instances = [i for i in snapshot.instances if i.csctl_id not in gone]
    clock.lap("join-check")
    # jobs' image URLs (VMLoc) become the images the clouds registered, or are rejected
    needed = snapshot_demand(snapshot, config, judge_with=judge_apart)
    demand, image_warnings = resolve_image_urls(needed, clouds)
    clock.lap("demand")
    allowed, kept_out = keep_out(demand, config, downtimes.effects)
    plan = plan_from_snapshot(allowed, snapshot, config, backoff.active(now), now)
    booted = execute_boot(plan, clouds, config, key, now, backoff)
    clock.lap("boot")
    retire_plan = plan_retire(joins, demand, config, now, hold=view.hold)
    retire_plan = retire_for_downtimes(retire_plan, joins, downtimes.downtimes, config, now)
    retired = execute_retire(retire_plan, joins, pool, clouds, config, key, now)
    clock.lap("retire")
    settled = settle(view, clouds, config, now)
    settled += update_ledger(config, ledger_pool, snapshot, now)  # the ledger: warnings only, never an error
    clock.lap("accounting")
    settled += publish_to(pool, config, downtimes.downtimes, now, [])

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
        warnings=downtimes.warnings + view.warnings + image_warnings + settled + plan.notes,
        held=list(view.hold),
        downtime=kept_out + downtimes.effects.warnings,
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


@dataclass
class CyclePlan:
    """What one cycle would do (``run --dry-run``): nothing of it was done."""

    idle_jobs: int
    unservable_jobs: int
    terminate_failed_joins: list[str]
    boot: BootPlan
    retire: RetirePlan
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    downtime: list[str] = field(default_factory=list)  # what declared downtimes keep out or report

    @property
    def partial(self) -> bool:
        return bool(self.errors)

    def summary(self) -> str:
        """The one line of a dry run."""
        drains = sum(1 for r in self.retire.retirements if r.action is Action.DRAIN)
        ends = len(self.retire.retirements) - drains + len(self.terminate_failed_joins)
        return (
            f"dry run: {self.idle_jobs} idle jobs; would boot {self.boot.total}, drain {drains}, "
            f"terminate {ends}; nothing was done"
        )


def plan_cycle(
    config: Config, pool: Pool, clouds: Mapping[str, Cloud], backoff: Backoff, now: datetime
) -> CyclePlan:
    """Everything a cycle would decide on one snapshot, without acting."""
    view = look(config, pool, clouds, now)
    snapshot, joins = view.snapshot, view.joins
    downtimes = in_effect(config, now)
    view.hold += downtimes.effects.hold()
    failed = set() if view.hold else {vm.csctl_id for vm in joins.failed()}
    snapshot.instances = [i for i in snapshot.instances if i.csctl_id not in failed]
    needed = snapshot_demand(snapshot, config, judge_with=judge_apart)
    demand, image_warnings = resolve_image_urls(needed, clouds)
    skipped = backoff.active(now)
    allowed, kept_out = keep_out(demand, config, downtimes.effects)
    boot_plan = plan_from_snapshot(allowed, snapshot, config, skipped, now)
    return CyclePlan(
        idle_jobs=demand.idle_jobs,
        unservable_jobs=sum(r.jobs for r in demand.rejected),
        terminate_failed_joins=sorted(failed),
        boot=boot_plan,
        retire=retire_for_downtimes(
            plan_retire(joins, demand, config, now, hold=view.hold), joins, downtimes.downtimes, config, now
        ),
        errors=list(snapshot.errors),
        warnings=downtimes.warnings + view.warnings + image_warnings + boot_plan.notes,
        downtime=kept_out + downtimes.effects.warnings,
    )


@dataclass
class CycleResult:
    """One cycle: its summary report and what each of its steps did."""

    report: CycleReport
    fixed: FixReport
    booted: BootReport
    retired: RetireReport

    @property
    def partial(self) -> bool:
        return self.report.partial


def run(services: Services, metrics_file: Path | None = None) -> CycleResult:
    """One cycle under the state directory's lock (LockHeld at once if another csctl
    holds it): backoff loaded, the cycle run, backoff saved, metrics written."""
    config, now = services.config, services.now()
    key = services.signing_key("boot and command VMs")
    with state_lock(services.state_dir, "run"):
        backoff, warnings = read_backoff(services.state_dir, now)
        try:
            report, fixed, booted, retired = run_cycle(
                config, services.pool, services.clouds, key, backoff, now
            )
        except CsctlError as exc:
            record_cycle(services.state_dir, now, None, exc.message)  # status shows why it stopped
            raise
        report.warnings = services.cloud_warnings + warnings + report.warnings
        report.warnings += keep_backoff(services.state_dir, backoff)
        if metrics_file is not None:
            try:
                write_metrics(metrics_file, report, now)
            except OSError as exc:
                report.warnings.append(f"{metrics_file}: metrics not written ({exc.strerror or exc})")
        report.warnings += record_cycle(services.state_dir, now, report)
    return CycleResult(report, fixed, booted, retired)


def dry_run(services: Services) -> CyclePlan:
    """What ``run`` would do now, without taking the lock or acting: nothing is booted,
    drained, terminated or written."""
    config, now = services.config, services.now()
    backoff, warnings = read_backoff(services.state_dir, now)
    result = plan_cycle(config, services.pool, services.clouds, backoff, now)
    result.warnings = services.cloud_warnings + warnings + result.warnings
    return result
