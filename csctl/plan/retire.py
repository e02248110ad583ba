"""Retirement planning: which VMs to drain, which to terminate, and why. Pure.

Graceful first: a VM to retire is drained (no new job; running jobs finish, the
VM's MAXJOBRETIREMENTTIME allows it), and terminated only once a fresh look at the
pool shows no claimed slot on it. A VM running a job is never terminated unless
``force`` is given, and then every job on it is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from csctl.config import Config
from csctl.plan.demand import Demand
from csctl.plan.reconcile import JoinReport, Status, VMView
from csctl.plan.supply import drain_seen

SCHEMA = "csctl.retireplan/1"


class Action(StrEnum):
    DRAIN = "drain"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Retirement:
    """One VM to act on."""

    csctl_id: str
    cloud: str
    vm_type: str
    action: Action
    reason: str
    jobs: tuple[str, ...] = ()  # jobs a forced termination kills


@dataclass
class RetirePlan:
    """What ``retire`` will do; ``--dry-run`` prints exactly this."""

    retirements: list[Retirement]
    kept: dict[str, str] = field(default_factory=dict)  # csctl id -> why it stays
    held: list[str] = field(default_factory=list)  # why nothing at all is retired this cycle
    schema: str = SCHEMA

    def ids(self, action: Action) -> list[str]:
        return [r.csctl_id for r in self.retirements if r.action is action]


def _needed(vm: VMView, demand: Demand) -> bool:
    return any(
        r.vm_type == vm.vm_type and vm.cloud in r.clouds and r.idle_jobs > 0 for r in demand.requirements
    )


def _keep_alive_minutes(vm: VMView, config: Config) -> int:
    """The jobs' VMKeepAlive the VM was booted for, else the cloud's, else the type's."""
    asked = [s.keep_alive_minutes for s in vm.slots if s.keep_alive_minutes is not None]
    if asked:
        return max(asked)
    cloud = config.clouds.get(vm.cloud)
    if cloud is not None and cloud.keep_alive_minutes is not None:
        return cloud.keep_alive_minutes
    vm_type = config.vm_types.get(vm.vm_type)
    return vm_type.keep_alive_minutes if vm_type else 0


def _why_retire(vm: VMView, demand: Demand, config: Config, now: datetime) -> str | None:
    """Why a joined VM should go, or None."""
    cloud = config.clouds.get(vm.cloud)
    if cloud is None:
        return f"cloud {vm.cloud} is no longer configured"
    if not cloud.enabled:
        return f"cloud {vm.cloud} is disabled: emptying it"
    lifetime = config.policy.max_lifetime_hours
    if lifetime and vm.age_minutes is not None and vm.age_minutes >= lifetime * 60:
        return f"past the maximum lifetime of {lifetime} h"
    if vm.status is Status.IDLE and not _needed(vm, demand):
        keep = _keep_alive_minutes(vm, config)
        idle = (now.timestamp() - vm.idle_since) / 60 if vm.idle_since is not None else None
        if idle is None or idle >= keep:
            return f"idle, no job needs {vm.vm_type} on {vm.cloud}" + (f" (kept {keep} min)" if keep else "")
    return None


def plan_retire(
    report: JoinReport,
    demand: Demand,
    config: Config,
    now: datetime,
    force: bool = False,
    hold: Sequence[str] = (),
) -> RetirePlan:
    """Decide, for every joined or stopped VM, whether to drain it, terminate it, or keep it.
    With ``hold`` reasons (the safety valve: the pool's view is incomplete) nothing is
    retired and every VM is kept, each saying why; ``force`` does not override a hold."""
    plan = _plan(report, demand, config, now, force)
    if hold:
        for r in plan.retirements:
            plan.kept[r.csctl_id] = f"would {r.action.value} ({r.reason}), held: {hold[0]}"
        plan.retirements, plan.held = [], list(hold)
    return plan


def _plan(report: JoinReport, demand: Demand, config: Config, now: datetime, force: bool) -> RetirePlan:
    plan = RetirePlan([])
    for vm in report.vms:
        if any(s.image_test for s in vm.slots):
            plan.kept[vm.csctl_id] = "under csctl image-test"  # image-test retires its own VM
        elif vm.status is Status.STOPPED:
            plan.retirements.append(_act(vm, Action.TERMINATE, "stopped in the cloud"))
        elif vm.status is Status.DRAINING:
            _finish_draining(vm, force or _past_deadline(vm, config, now), plan)
        elif vm.status is Status.UNSEEN:
            _unseen(vm, config, plan)
        elif vm.status in (Status.IDLE, Status.BUSY):
            reason = _why_retire(vm, demand, config, now)
            if reason is None:
                plan.kept[vm.csctl_id] = _why_kept(vm, demand)
            elif force and vm.in_use:
                plan.retirements.append(_act(vm, Action.TERMINATE, reason + " (forced)", forced=True))
            else:
                plan.retirements.append(_act(vm, Action.DRAIN, reason))
    return plan


def _unseen(vm: VMView, config: Config, plan: RetirePlan) -> None:
    """A VM that joined once but has no ad: kept while a job runs there or while its
    startd may still advertise again; past the join timeout with no job, HTCondor is
    gone from it."""
    minutes = vm.unseen_minutes or 0
    timeout = config.policy.join_timeout_minutes
    if vm.running_jobs:
        plan.kept[vm.csctl_id] = f"no startd ad, but the schedd runs {len(vm.running_jobs)} job(s) there"
    elif minutes >= timeout:
        reason = f"joined once, no startd ad for {minutes} min and no job runs there"
        plan.retirements.append(_act(vm, Action.TERMINATE, reason))
    else:
        plan.kept[vm.csctl_id] = f"no startd ad for {minutes} min: waiting up to {timeout} min for it"


def _why_kept(vm: VMView, demand: Demand) -> str:
    if vm.status is Status.BUSY:
        return "running jobs"
    return "needed" if _needed(vm, demand) else "within keep-alive"


def _past_deadline(vm: VMView, config: Config, now: datetime) -> bool:
    """Whether a draining VM passed policy.drain_deadline_minutes (0: no deadline)."""
    deadline = config.policy.drain_deadline_minutes
    started = [s.drain_started for s in vm.slots if s.drain_started]
    return bool(deadline and started and now.timestamp() - min(started) >= deadline * 60)


def _finish_draining(vm: VMView, force: bool, plan: RetirePlan) -> None:
    if not vm.in_use and drain_seen(vm.slots):
        plan.retirements.append(_act(vm, Action.TERMINATE, "drained"))
    elif force:
        plan.retirements.append(_act(vm, Action.TERMINATE, "draining (forced)", forced=True))
    elif vm.in_use:
        plan.kept[vm.csctl_id] = f"draining: {vm.jobs} job(s) still running"
    else:
        plan.kept[vm.csctl_id] = "draining: waiting for every slot's ad to show the drain"


def _act(vm: VMView, action: Action, reason: str, forced: bool = False) -> Retirement:
    jobs = (tuple(s.job_id or "?" for s in vm.claimed) or ("?",) * vm.jobs) if forced else ()
    return Retirement(vm.csctl_id, vm.cloud, vm.vm_type, action, reason, jobs)
