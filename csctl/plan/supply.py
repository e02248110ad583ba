"""Supply: the room csctl's VMs already offer, from the pool's slot ads and the clouds' lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from csctl.config import Config
from csctl.model import Instance, Snapshot, StartdSlot, SupplyVM, VMState
from csctl.plan.demand import Demand, Judge, compute_demand
from csctl.plan.matching import KB_PER_GB, Matcher


def drain_seen(slots: Iterable[StartdSlot]) -> bool:
    """Whether every partitionable or static slot of one VM says Draining: ads the startd
    published after the drain, whose claims (dynamic slots counted) are all there."""
    owners = [s for s in slots if s.slot_type != "Dynamic"]
    return bool(owners) and all(s.draining for s in owners)


def supply_from_slots(slots: Iterable[StartdSlot]) -> list[SupplyVM]:
    """Free room per joined csctl VM: what its partitionable slot has left plus its
    unclaimed static slots. Draining VMs offer nothing."""
    room: dict[str, list[int]] = {}
    meta: dict[str, StartdSlot] = {}
    free_slots: dict[str, int] = {}
    for slot in slots:
        if not slot.free or not slot.csctl_id:
            continue
        totals = room.setdefault(slot.csctl_id, [0, 0, 0])
        totals[0] += slot.cpus
        totals[1] += slot.memory
        totals[2] += slot.disk_kb
        meta.setdefault(slot.csctl_id, slot)
        free_slots[slot.csctl_id] = free_slots.get(slot.csctl_id, 0) + 1
    # a lone free static slot (a VM booted for one job per VM) takes one job, whatever its size
    return [
        SupplyVM(
            vm_id,
            meta[vm_id].vm_type,
            meta[vm_id].cloud,
            c,
            m,
            d,
            False,
            _one_static(meta[vm_id], free_slots),
        )
        for vm_id, (c, m, d) in sorted(room.items())
        if c > 0
    ]


def _one_static(slot: StartdSlot, free_slots: dict[str, int]) -> bool:
    return slot.slot_type == "Static" and free_slots[slot.csctl_id] == 1


def booting_supply(
    instances: Sequence[Instance], slots: Sequence[StartdSlot], config: Config
) -> list[SupplyVM]:
    """Instances the cloud runs or boots that have no startd in the pool yet: full room."""
    joined = {slot.csctl_id for slot in slots}
    supply = []
    for inst in instances:
        vm_type = config.vm_types.get(inst.vm_type)
        if vm_type is None or inst.csctl_id in joined or inst.cloud not in config.clouds:
            continue  # a VM of a cloud that left the configuration is retired, not room
        if inst.state in (VMState.BOOTING, VMState.RUNNING):
            disk = vm_type.disk * KB_PER_GB
            supply.append(
                SupplyVM(
                    inst.csctl_id,
                    inst.vm_type,
                    inst.cloud,
                    vm_type.cpus,
                    vm_type.memory,
                    disk,
                    True,
                    inst.single_slot,
                )
            )
    return supply


def supply(snapshot: Snapshot, config: Config) -> list[SupplyVM]:
    """All room csctl already has: free room on joined VMs plus VMs still booting."""
    return supply_from_slots(snapshot.slots) + booting_supply(snapshot.instances, snapshot.slots, config)


def snapshot_demand(
    snapshot: Snapshot, config: Config, matcher: Matcher | None = None, judge_with: Judge | None = None
) -> Demand:
    """What the snapshot's idle jobs need after all the room csctl already has: the one
    demand every command (demand, boot, retire, run) plans from (``matcher`` and
    ``judge_with``: see ``compute_demand``)."""
    return compute_demand(snapshot.groups, supply(snapshot, config), config, matcher, judge_with)
