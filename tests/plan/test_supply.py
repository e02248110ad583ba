"""Supply (pure): the room csctl's VMs already offer, joined or still booting."""

import dataclasses

from csctl.config import parse_config
from csctl.model import Instance, Snapshot, StartdSlot, SupplyVM, VMState
from csctl.plan.matching import KB_PER_GB
from csctl.plan.supply import booting_supply, drain_seen, supply, supply_from_slots

CONFIG = parse_config(
    """
[pool]
name = "p"
collector = "127.0.0.1"
[clouds.A]
driver = "local"
[vm_types.t]
cpus = 4
memory = 8000
disk = 10
images = { A = "x" }
"""
)
SLOT = StartdSlot(
    name="slot1@a",
    machine="a",
    csctl_id="a",
    vm_type="t",
    cloud="A",
    slot_type="Partitionable",
    state="Unclaimed",
    activity="Idle",
    cpus=3,
    memory=6000,
    disk_kb=5000,
)


def slot(vm_id: str = "a", **changes) -> StartdSlot:
    return dataclasses.replace(
        SLOT, name=f"{changes.pop('name', 'slot1')}@{vm_id}", csctl_id=vm_id, **changes
    )


def static(vm_id: str, n: int, state: str = "Unclaimed", **changes) -> StartdSlot:
    return slot(
        vm_id, name=f"slot{n}", slot_type="Static", state=state, cpus=1, memory=2000, disk_kb=100, **changes
    )


def dynamic(vm_id: str, **changes) -> StartdSlot:
    return slot(vm_id, name="slot1_1", slot_type="Dynamic", state="Claimed", cpus=1, memory=2000, **changes)


def inst(vm_id: str, state: VMState = VMState.RUNNING, vm_type: str = "t") -> Instance:
    return Instance(vm_id, "A", vm_type, state, f"p-{vm_id}")


def test_a_partitionable_slot_offers_what_it_has_left():
    assert supply_from_slots([slot("a"), dynamic("a")]) == [
        SupplyVM("a", "t", "A", 3, 6000, 5000, booting=False)
    ]


def test_unclaimed_static_slots_add_up_and_claimed_ones_offer_nothing():
    slots = [static("s", 1), static("s", 2), static("s", 3, "Claimed")]
    assert supply_from_slots(slots) == [SupplyVM("s", "t", "A", 2, 4000, 200, booting=False)]
    assert supply_from_slots([static("s", 1, "Claimed")]) == []


def test_draining_image_test_and_anonymous_slots_offer_nothing():
    assert supply_from_slots([slot("a", draining=True)]) == []
    assert supply_from_slots([slot("a", image_test="img-1")]) == []
    assert supply_from_slots([slot("", machine="stranger")]) == []


def test_a_slot_with_no_cpu_left_offers_nothing_and_vms_come_sorted():
    slots = [slot("c"), slot("a", cpus=0), slot("b", cpus=1)]
    assert [(s.csctl_id, s.cpus) for s in supply_from_slots(slots)] == [("b", 1), ("c", 3)]


def test_booting_and_running_instances_without_a_startd_offer_their_full_type():
    instances = [
        inst("new", VMState.BOOTING),
        inst("up", VMState.RUNNING),
        inst("joined"),
        inst("broken", VMState.ERROR),
        inst("off", VMState.STOPPED),
        inst("gone", VMState.DELETED),
        inst("other", vm_type="unconfigured"),
    ]
    full = (4, 8000, 10 * KB_PER_GB)
    assert booting_supply(instances, [slot("joined")], CONFIG) == [
        SupplyVM("new", "t", "A", *full, booting=True),
        SupplyVM("up", "t", "A", *full, booting=True),
    ]


def test_a_joined_vm_with_no_free_room_is_not_counted_as_booting():
    # its only slot is claimed: no room, and its startd proves it is no longer booting
    claimed = static("busy", 1, "Claimed")
    assert booting_supply([inst("busy")], [claimed], CONFIG) == []


def test_supply_is_free_room_then_booting_vms():
    snapshot = Snapshot(slots=[slot("a")], instances=[inst("a"), inst("b", VMState.BOOTING)])
    assert [(s.csctl_id, s.booting) for s in supply(snapshot, CONFIG)] == [("a", False), ("b", True)]


def test_drain_seen_needs_every_owning_slot_to_say_draining():
    assert drain_seen([slot("a", draining=True), dynamic("a")])  # a dynamic slot's ad does not count
    assert drain_seen([static("s", 1, draining=True), static("s", 2, draining=True)])
    assert not drain_seen([static("s", 1, draining=True), static("s", 2)])
    assert not drain_seen([dynamic("a", draining=True)])  # no owning slot seen at all
    assert not drain_seen([])
