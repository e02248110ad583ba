"""Acting on VMs: draining and terminating for ``retire``, cleaning up for ``join-check --fix``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from csctl.clouds.base import Cloud, Instance
from csctl.config import Config
from csctl.context.render import admin_identity
from csctl.core.reconcile import JoinReport, Status, VMView
from csctl.core.retire import Action, RetirePlan
from csctl.core.state import Backoff, write_atomically
from csctl.core.supply import StartdSlot, drain_seen
from csctl.core.tokens import COMMAND_SCOPES, SigningKey, derive_vm_key, mint
from csctl.errors import CloudError
from csctl.pool import DrainTarget, Pool

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


def batch_of(csctl_id: str) -> str:
    """The boot batch a VM belongs to (its id without the launch index)."""
    return csctl_id.rsplit("-", 1)[0]


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
class FixReport:
    """What ``join-check --fix`` terminated, and where it saved each console."""

    terminated: list[str] = field(default_factory=list)
    consoles: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def fix_failed_joins(
    report: JoinReport, clouds: Mapping[str, Cloud], config: Config, backoff: Backoff, now: datetime
) -> FixReport:
    """Terminate never-joined and errored VMs after saving their console output, and count
    each failure against its image on its cloud (the boot backoff)."""
    fix = FixReport()
    failed = [vm for vm in report.vms if vm.status in (Status.NEVER_JOINED, Status.ERROR) and vm.instance]
    console_dir = config.state_dir / "console"
    for vm in failed:
        assert vm.instance is not None
        cloud = clouds.get(vm.cloud)
        text = ""
        if cloud is not None:
            try:
                text = cloud.console_output(vm.instance)
            except CloudError as exc:
                text = f"(console unavailable: {exc.message})"
        path = console_dir / f"{vm.csctl_id}-{now:%Y%m%dT%H%M%SZ}.log"
        header = f"csctl: {vm.csctl_id} on {vm.cloud}: {vm.status.value}"
        if vm.instance.fault:
            header += f" ({vm.instance.fault})"
        write_atomically(path, f"{header}\n{text}\n".encode(), mode=0o600)
        fix.consoles[vm.csctl_id] = str(path)
        backoff.fail(_image_key(vm, config), now)
    fix.terminated = terminate(clouds, [vm.instance for vm in failed if vm.instance], fix.errors)
    return fix


def _image_key(vm: VMView, config: Config) -> str:
    """``cloud/image`` of a VM: what the cloud reports, else what its type boots there."""
    image = vm.instance.image if vm.instance else None
    if image is None:
        vm_type = config.vm_types.get(vm.vm_type)
        image = vm_type.images.get(vm.cloud) if vm_type else None
    return f"{vm.cloud}/{image or '?'}"
