"""Retiring VMs: drain what the plan drains, then terminate what shows no claim."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from csctl.config import Config
from csctl.context.render import admin_identity
from csctl.context.tokens import COMMAND_SCOPES, SigningKey, derive_vm_key, mint
from csctl.engine.judging import judge_apart
from csctl.engine.services import Services
from csctl.engine.state import acting
from csctl.engine.view import look, settle
from csctl.errors import CloudError
from csctl.model import Cloud, DrainTarget, Instance, Pool, StartdSlot, batch_of
from csctl.plan.reconcile import JoinReport, VMView
from csctl.plan.retire import Action, RetirePlan, plan_retire
from csctl.plan.supply import drain_seen, snapshot_demand

log = logging.getLogger(__name__)
COMMAND_TOKEN_SECONDS = 300


@dataclass
class RetireReport:
    """What retire did. ``draining``: drained VMs still finishing jobs."""

    drained: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    draining: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    killed_jobs: dict[str, list[str]] = field(default_factory=dict)


def drain_target(vm: VMView, config: Config, pool_key: SigningKey, now: datetime) -> DrainTarget | None:
    """How to reach and command a joined VM: its startd's address and a short-lived token
    signed with its batch's own key (the only key the VM trusts)."""
    address = next((s.address for s in vm.slots if s.address), None)
    if address is None:
        return None
    batch_key = derive_vm_key(pool_key, batch_of(vm.csctl_id))
    token = mint(
        batch_key,
        issuer=config.pool.name,
        subject=admin_identity(config),
        scopes=COMMAND_SCOPES,
        now=now,
        lifetime_seconds=COMMAND_TOKEN_SECONDS,
    )
    return DrainTarget(vm.csctl_id, address, token, batch_key.name)


def terminate(clouds: Mapping[str, Cloud], instances: Iterable[Instance], errors: list[str]) -> list[str]:
    """Terminate instances, one call per cloud; a failing cloud is reported, not raised."""
    by_cloud: dict[str, list[Instance]] = {}
    for inst in instances:
        by_cloud.setdefault(inst.cloud, []).append(inst)
    done: list[str] = []
    for cloud, group in by_cloud.items():
        if cloud not in clouds:
            errors.append(f"cloud {cloud}: not configured or disabled, cannot terminate {len(group)} VM(s)")
            continue
        try:
            done += clouds[cloud].terminate(group)
        except CloudError as exc:
            errors.append(exc.message)
    return done


def execute_retire(
    plan: RetirePlan,
    report: JoinReport,
    pool: Pool,
    clouds: Mapping[str, Cloud],
    config: Config,
    pool_key: SigningKey,
    now: datetime,
    settle_seconds: float = 15,
    sleep: Callable[[float], object] = time.sleep,
) -> RetireReport:
    """Drain what the plan drains, then terminate what the plan terminates plus every
    just-drained VM whose own ad, published after the drain, shows no claimed slot.

    A collector ad from before the drain may miss a claim the negotiator made just then;
    once an ad says Draining, the VM takes no new claim and the ad shows every claim it
    has. Drained VMs whose ads do not say so within ``settle_seconds`` are left for the
    next cycle.
    """
    views = {vm.csctl_id: vm for vm in report.vms}
    result = RetireReport()
    targets = []
    for r in plan.retirements:
        if r.action is Action.DRAIN:
            target = drain_target(views[r.csctl_id], config, pool_key, now)
            if target is None:
                result.errors.append(f"{r.csctl_id}: no startd address to drain")
            else:
                targets.append(target)
    for csctl_id, error in pool.drain(targets, reason="csctl retire").items():
        if error:
            result.errors.append(f"{csctl_id}: {error}")
        else:
            result.drained.append(csctl_id)
    to_terminate = [views[i] for i in plan.ids(Action.TERMINATE)]
    idle, _ = confirm_drained(pool, result.drained, settle_seconds, sleep)
    to_terminate += [views[i] for i in idle]
    result.draining = [i for i in result.drained if i not in idle]
    for r in plan.retirements:
        if r.jobs:
            log.warning("forced termination of %s kills job(s) %s", r.csctl_id, ", ".join(r.jobs))
            result.killed_jobs[r.csctl_id] = list(r.jobs)
    instances = [vm.instance for vm in to_terminate if vm.instance is not None]
    result.terminated = terminate(clouds, instances, result.errors)
    return result


def confirm_drained(
    pool: Pool, drained: list[str], settle_seconds: float, sleep: Callable[[float], object]
) -> tuple[list[str], list[str]]:
    """Wait (up to ``settle_seconds``) for each drained VM's ads to say Draining; return
    (VMs drained with no claim, VMs still running jobs).

    Only an ad published after the drain counts: every partitionable or static slot of
    the VM must say Draining. A partitionable slot's ad carries its own count of dynamic
    slots, so a claim made just before the drain shows there even when the new dynamic
    slot's ad has not reached the collector yet."""
    pending = set(drained)
    idle: list[str] = []
    busy: list[str] = []
    deadline = time.monotonic() + settle_seconds
    while pending:
        by_vm: dict[str, list[StartdSlot]] = {}
        for slot in pool.csctl_slots():
            if slot.csctl_id in pending:
                by_vm.setdefault(slot.csctl_id, []).append(slot)
        for csctl_id, slots in by_vm.items():
            if drain_seen(slots):
                (busy if any(s.in_use for s in slots) else idle).append(csctl_id)
                pending.discard(csctl_id)
        if not pending or time.monotonic() >= deadline:
            break
        sleep(1)
    return sorted(idle), sorted(busy)


@dataclass
class RetireResult:
    """The retire plan and, unless it was a dry run, what was done. ``errors``: what the
    snapshot could not read."""

    plan: RetirePlan
    done: RetireReport | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.errors) or bool(self.done and self.done.errors)


def retire(services: Services, dry_run: bool = False, force: bool = False) -> RetireResult:
    """Plan which VMs no job needs; unless ``dry_run``, drain them and terminate those whose
    own ads show no claim (``force`` also terminates busy VMs, naming each job killed)."""
    config, now = services.config, services.now()
    key = None if dry_run else services.signing_key("command VMs")
    with acting(services.state_dir, "retire", dry_run):
        view = look(config, services.pool, services.clouds, now)
        needed = snapshot_demand(view.snapshot, config, judge_with=judge_apart)
        plan = plan_retire(view.joins, needed, config, now, force=force, hold=view.hold)
        warnings = services.cloud_warnings + view.warnings
        result = RetireResult(plan, errors=list(view.snapshot.errors), warnings=warnings)
        if key is not None:
            result.done = execute_retire(plan, view.joins, services.pool, services.clouds, config, key, now)
            result.warnings += settle(view, services.clouds, config, now)
    return result
