"""Supply: the room csctl's VMs already offer, from the pool's slot ads and the clouds' lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from csctl.core.demand import SupplyVM


@dataclass(frozen=True)
class StartdSlot:
    """One slot ad of a csctl VM, reduced to what the planners use."""

    name: str
    machine: str
    csctl_id: str
    vm_type: str
    cloud: str
    slot_type: str
    state: str
    activity: str
    cpus: int
    memory: int
    disk_kb: int
    draining: bool = False
    address: str | None = None
    job_id: str | None = None
    entered_state: int | None = None
    # when a partitionable slot last gained or lost a dynamic slot: its EnteredCurrentState
    # stays at the VM's join while jobs come and go
    dynamic_slots_changed: int | None = None
    drain_started: int | None = None  # LastDrainStartTime, epoch seconds
    # a partitionable slot's own count of its dynamic slots (NumDynamicSlots): published in
    # the same ad as its Draining flag, while a new dynamic slot's ad may reach the collector later
    dynamic_slots: int = 0
    image_test: str | None = None  # CsctlImageTest: the VM belongs to `csctl image-test`
    keep_alive_minutes: int | None = None  # CsctlKeepAlive: the VMKeepAlive it was booted for

    @property
    def in_use(self) -> bool:
        """Whether this slot, or a dynamic slot carved from it, holds a claim."""
        return self.state == "Claimed" or self.dynamic_slots > 0

    @property
    def free(self) -> bool:
        """Whether the slot's resources can still take a job."""
        if self.draining or self.image_test:
            return False  # an image under test admits only its probe job
        return self.slot_type == "Partitionable" or self.state == "Unclaimed"


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
    for slot in slots:
        if not slot.free or not slot.csctl_id:
            continue
        totals = room.setdefault(slot.csctl_id, [0, 0, 0])
        totals[0] += slot.cpus
        totals[1] += slot.memory
        totals[2] += slot.disk_kb
        meta.setdefault(slot.csctl_id, slot)
    return [
        SupplyVM(vm_id, meta[vm_id].vm_type, meta[vm_id].cloud, c, m, d, booting=False)
        for vm_id, (c, m, d) in sorted(room.items())
        if c > 0
    ]
