"""Acting on VMs: draining and terminating for ``retire``, cleaning up for ``join-check --fix``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from csctl.clouds.base import Cloud, Instance
from csctl.config import Config
from csctl.context.render import admin_identity
from csctl.core.reconcile import JoinReport, Status, VMView
from csctl.core.retire import Action, RetirePlan
from csctl.core.state import Backoff, write_atomically
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
) -> RetireReport:
    """Drain what the plan drains, take a fresh look at the pool, then terminate what the
    plan terminates plus every just-drained VM that has no claimed slot left."""
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
    fresh_claimed = {s.csctl_id for s in pool.csctl_slots() if s.state == "Claimed"} if targets else set()
    to_terminate = [views[i] for i in plan.ids(Action.TERMINATE)]
    for csctl_id in result.drained:
        if csctl_id in fresh_claimed:
            result.draining.append(csctl_id)
        else:
            to_terminate.append(views[csctl_id])
    for r in plan.retirements:
        if r.jobs:
            log.warning("forced termination of %s kills job(s) %s", r.csctl_id, ", ".join(r.jobs))
            result.killed_jobs[r.csctl_id] = list(r.jobs)
    instances = [vm.instance for vm in to_terminate if vm.instance is not None]
    result.terminated = terminate(clouds, instances, result.errors)
    return result


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
