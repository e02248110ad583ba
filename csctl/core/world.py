"""One look at the world: the pool's idle jobs and slots, and every cloud's instances.

Each command rebuilds this from scratch (csctl keeps no database): one schedd query
per schedd, one collector query, one list call per cloud, clouds in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from csctl.clouds.base import Cloud, Instance, VMState
from csctl.config import Config
from csctl.core.demand import JobGroup, SupplyVM
from csctl.core.matching import KB_PER_GB
from csctl.core.supply import StartdSlot, supply_from_slots
from csctl.errors import CloudError
from csctl.pool import Pool


@dataclass
class Snapshot:
    """What csctl saw in one cycle. ``errors`` names the schedds and clouds that failed."""

    groups: list[JobGroup] = field(default_factory=list)
    slots: list[StartdSlot] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_clouds: set[str] = field(default_factory=set)


def list_clouds(clouds: Mapping[str, Cloud], pool_name: str) -> tuple[list[Instance], dict[str, str]]:
    """Every cloud's csctl instances, clouds listed in parallel; errors per failed cloud."""

    def one(name: str) -> tuple[str, list[Instance] | str]:
        try:
            return name, clouds[name].list_instances(pool_name)
        except CloudError as exc:
            return name, exc.message

    instances: list[Instance] = []
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(clouds))) as executor:
        for name, result in executor.map(one, list(clouds)):
            if isinstance(result, str):
                errors[name] = result
            else:
                instances += result
    return instances, errors


def take_snapshot(
    pool: Pool | None, clouds: Mapping[str, Cloud], config: Config, jobs: bool = True
) -> Snapshot:
    """The pool's idle jobs (if ``jobs``) and csctl slots (both skipped when ``pool`` is
    None) and every cloud's instances. The pool is read while the clouds are listed."""
    snapshot = Snapshot()
    with ThreadPoolExecutor(max_workers=1) as executor:
        listing = executor.submit(list_clouds, clouds, config.pool.name)
        if pool is not None:
            if jobs:
                queue = pool.idle_jobs()
                snapshot.groups, snapshot.errors = queue.groups, list(queue.errors)
            snapshot.slots = pool.csctl_slots()
        snapshot.instances, cloud_errors = listing.result()
    snapshot.errors += cloud_errors.values()
    snapshot.failed_clouds = set(cloud_errors)
    return snapshot


def booting_supply(
    instances: Sequence[Instance], slots: Sequence[StartdSlot], config: Config
) -> list[SupplyVM]:
    """Instances the cloud runs or boots that have no startd in the pool yet: full room."""
    joined = {slot.csctl_id for slot in slots}
    supply = []
    for inst in instances:
        vm_type = config.vm_types.get(inst.vm_type)
        if vm_type is None or inst.csctl_id in joined:
            continue
        if inst.state in (VMState.BOOTING, VMState.RUNNING):
            disk = vm_type.disk * KB_PER_GB
            supply.append(
                SupplyVM(inst.csctl_id, inst.vm_type, inst.cloud, vm_type.cpus, vm_type.memory, disk, True)
            )
    return supply


def supply(snapshot: Snapshot, config: Config) -> list[SupplyVM]:
    """All room csctl already has: free room on joined VMs plus VMs still booting."""
    return supply_from_slots(snapshot.slots) + booting_supply(snapshot.instances, snapshot.slots, config)
