"""One look at the pool and the clouds, reconciled: the snapshot, every VM's status (with
the jobs the schedds run there and what csctl remembers of VMs whose ads went missing),
and whether the view is complete enough to destroy anything (the safety valve).

Commands that act then ``settle`` the view: they remember the unseen VMs for the next
cycle and tag newly joined VMs in their cloud, so that no later cycle mistakes them for
VMs that never joined.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from csctl.config import Config
from csctl.engine.departed import remember_clouds
from csctl.engine.snapshot import take_snapshot
from csctl.engine.state import keep_unseen, read_unseen
from csctl.errors import CloudError
from csctl.model import Cloud, Instance, Pool, Snapshot
from csctl.plan.reconcile import JoinReport, reconcile, unseen_memory
from csctl.plan.safety import hold_reasons


@dataclass
class View:
    """The snapshot and what it means. ``hold``: why nothing may be destroyed now."""

    snapshot: Snapshot
    joins: JoinReport
    hold: list[str] = field(default_factory=list)
    unseen: dict[str, datetime] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def look(config: Config, pool: Pool, clouds: Mapping[str, Cloud], now: datetime, jobs: bool = True) -> View:
    """Take the snapshot and reconcile it with the jobs the schedds run and csctl's memory
    of unseen VMs; decide whether the pool's view is complete."""
    snapshot = take_snapshot(pool, clouds, config, jobs=jobs)
    remembered, warnings = read_unseen(config.state_dir, now)
    joins = reconcile(
        snapshot.instances,
        snapshot.slots,
        config,
        now,
        snapshot.failed_clouds,
        running=snapshot.running,
        unseen_since=remembered,
    )
    hold = hold_reasons(joins, snapshot.pool_errors)
    departed = sorted({i.cloud for i in snapshot.instances} - set(config.clouds))
    warnings = snapshot.warnings + warnings
    warnings += [f"cloud {c} left the configuration: its VMs are being retired" for c in departed]
    return View(snapshot, joins, hold, unseen_memory(joins, remembered, now), warnings)


def settle(view: View, clouds: Mapping[str, Cloud], config: Config, now: datetime) -> list[str]:
    """After acting: remember the unseen VMs, the clouds csctl has VMs on, and tag the
    newly joined VMs; warnings only (none is worth failing a cycle for)."""
    used = {i.cloud for i in view.snapshot.instances} | view.snapshot.failed_clouds
    warnings = keep_unseen(config.state_dir, view.unseen) + remember_clouds(config, used)
    return warnings + mark_joined(view.joins, clouds, now)


def mark_joined(joins: JoinReport, clouds: Mapping[str, Cloud], now: datetime) -> list[str]:
    """Tag, in its cloud, every VM whose startd is in the pool and whose instance does not
    carry the joined tag yet: one call per cloud."""
    by_cloud: dict[str, list[Instance]] = {}
    for vm in joins.vms:
        if vm.slots and vm.instance is not None and vm.instance.joined_at is None:
            by_cloud.setdefault(vm.cloud, []).append(vm.instance)
    warnings = []
    for name, instances in sorted(by_cloud.items()):
        cloud = clouds.get(name)
        if cloud is None or not hasattr(cloud, "mark_joined"):
            continue  # a driver from before the joined tag: the schedds' jobs still protect
        try:
            cloud.mark_joined(instances, now)
        except CloudError as exc:
            warnings.append(f"{exc.message} (joined tag not set on {len(instances)} VM(s))")
    return warnings
