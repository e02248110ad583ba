"""VMJobPerCore = false (Cloud Scheduler's one job per VM): demand packs one job per VM,
keeps those jobs in a requirement of their own, and the boot plan asks for VMs of one
slot holding all their resources, so demand's packing and the VM agree."""

from __future__ import annotations

from csctl.config import parse_config
from csctl.model import Instance, StartdSlot, VMState
from csctl.plan.demand import Demand, compute_demand
from csctl.plan.demand_file import demand_from_json
from csctl.plan.matching import KB_PER_GB
from csctl.plan.placement import plan_boot
from csctl.plan.queue import group_ads
from csctl.plan.supply import booting_supply, supply_from_slots
from tests.plan.test_demand import CONFIG, jobs
from tests.plan.test_placement import config as placement_config
from tests.plan.test_placement import demand as placement_demand


def test_whole_vm_jobs_form_their_own_requirement_of_one_slot_vms() -> None:
    config = parse_config(CONFIG)
    ads = jobs(3, VMJobPerCore=False) + jobs(8, owner="bob")
    demand = compute_demand(group_ads(ads), [], config)
    by_kind = {r.single_slot: r for r in demand.requirements}
    assert (by_kind[True].idle_jobs, by_kind[True].vms_needed) == (3, 3)
    assert (by_kind[False].idle_jobs, by_kind[False].vms_needed) == (8, 1)


def test_jobs_that_say_nothing_share_partitionable_vms() -> None:
    demand = compute_demand(group_ads(jobs(3, VMJobPerCore=True) + jobs(2)), [], parse_config(CONFIG))
    (req,) = demand.requirements
    assert (req.single_slot, req.vms_needed) == (False, 1)


def test_the_boot_plan_asks_for_one_slot_vms_apart() -> None:
    whole = placement_demand(2, clouds=("Hermes",), single_slot=True).requirements
    shared = placement_demand(1, clouds=("Hermes",)).requirements
    plan = plan_boot(Demand(whole + shared, [], 24), [], placement_config())
    assert sorted((i.count, i.single_slot) for i in plan.items) == [(1, False), (2, True)]


def test_a_demand_file_keeps_the_slot_layout() -> None:
    demand = compute_demand(group_ads(jobs(2, VMJobPerCore=False)), [], parse_config(CONFIG))
    data = {"schema": demand.schema, "requirements": [vars(r) for r in demand.requirements], "idle_jobs": 2}
    (req,) = demand_from_json(data).requirements
    assert req.single_slot


def test_a_booting_one_slot_vm_is_room_for_one_job_whatever_its_size() -> None:
    config = parse_config(CONFIG)
    booting = Instance("A-1-0", "A", "big", VMState.BOOTING, "p-1", single_slot=True)
    room = booting_supply([booting], [], config)
    assert [vm.single_slot for vm in room] == [True]
    demand = compute_demand(group_ads(jobs(9)), room, config)
    (req,) = demand.requirements
    assert (req.jobs_on_existing, req.vms_booting, req.vms_needed) == (1, 1, 1)


def test_a_joined_vms_free_static_slot_takes_one_job() -> None:
    config = parse_config(CONFIG)
    slot = StartdSlot(
        "slot1@vm", "vm", "A-1-0", "big", "A", "Static", "Unclaimed", "Idle", 8, 16000, 100 * KB_PER_GB
    )
    room = supply_from_slots([slot])
    assert [(vm.cpus, vm.single_slot) for vm in room] == [(8, True)]
    (req,) = compute_demand(group_ads(jobs(3)), room, config).requirements
    assert (req.jobs_on_existing, req.vms_with_room, req.vms_needed) == (1, 1, 1)


def test_partitionable_room_still_packs_many_jobs() -> None:
    config = parse_config(CONFIG)
    booting = Instance("A-1-0", "A", "big", VMState.BOOTING, "p-1")
    (req,) = compute_demand(group_ads(jobs(9)), booting_supply([booting], [], config), config).requirements
    assert (req.jobs_on_existing, req.vms_needed) == (8, 1)
