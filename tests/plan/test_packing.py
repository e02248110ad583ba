"""Packing: the room a VM has left, the slot a job takes, first-fit-decreasing onto VMs."""

from __future__ import annotations

from csctl.model import SupplyVM
from csctl.plan.jobs import JobNeeds
from csctl.plan.packing import OPEN_WINDOW, Room, job_slot, pack

VM = (8, 16000, 100 * 1024 * 1024)  # cpus, MB, KB


def test_room_fits_by_the_scarcest_resource_and_a_single_slot_vm_takes_one_job():
    room = Room(8, 4000, 10**9)
    assert room.fits(1, 1000, 0) == 4  # memory runs out before cores
    room.take(2, 1, 1000, 0)
    assert (room.cpus, room.memory, room.used) == (6, 2000, True)
    single = Room(8, 16000, 10**9, one_job=True)
    assert single.fits(1, 100, 0) == 1
    single.take(1, 1, 100, 0)
    assert single.fits(1, 1, 0) == 0  # the one job took the whole VM


def test_a_whole_vm_job_takes_the_vm_and_others_their_request():
    whole = JobNeeds(cpus=1, memory=100, disk_kb=1, whole_vm=True)
    assert job_slot(whole, VM) == VM
    assert job_slot(JobNeeds(cpus=2, memory=300, disk_kb=5), VM) == (2, 300, 5)


def test_existing_room_is_used_before_new_vms_and_largest_jobs_go_first():
    supply = SupplyVM("a-1", "std", "A", 4, 8000, 10**9, True)
    existing = [Room(4, 8000, 10**9, supply=supply)]
    # 3 four-core jobs and 6 one-core: a four-core job fills the booting VM, the rest
    # pack onto new 8-core VMs: 2 x 4 + 6 x 1 = 14 cores -> 2 new VMs
    placed, new_vms = pack([((1, 100, 0), 6), ((4, 100, 0), 3)], VM, existing)
    assert (placed, new_vms) == (1, 2)


def test_many_distinct_shapes_cost_a_window_of_open_vms_not_all_of_them():
    shapes = [((1, 1000 + i, 0), 1) for i in range(5000)]
    placed, new_vms = pack(shapes, VM, [])
    # memory binds (1000-5999 MB jobs on 16000 MB VMs): at least its volume bound of VMs;
    # searching only OPEN_WINDOW open VMs per shape costs at most a quarter more
    memory_bound = sum(1000 + i for i in range(5000)) / VM[1]
    assert placed == 0 and memory_bound <= new_vms <= 1.25 * memory_bound
    assert new_vms > OPEN_WINDOW
