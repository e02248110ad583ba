"""Packing idle jobs onto VMs, after what is booting or has room."""

import math

import classad2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.model import JobGroup, SupplyVM
from csctl.plan.demand import compute_demand
from csctl.plan.fairshare import need_by_owner
from csctl.plan.matching import KB_PER_GB
from csctl.plan.queue import group_ads

CONFIG = """
[pool]
name = "pool.test"
collector = "127.0.0.1"
[clouds.A]
driver = "local"
[clouds.B]
driver = "local"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = { A = "img", B = "img" }
"""


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG)


def jobs(count: int, owner: str = "alice", **attrs) -> list:
    ads = []
    for proc in range(count):
        ad = classad2.ClassAd({"ClusterId": 1, "ProcId": proc, "Owner": owner, **attrs})
        ad["Requirements"] = classad2.ExprTree('VMType =?= "big"')
        ads.append(ad)
    return ads


def test_eight_one_core_jobs_fill_one_vm(config):
    demand = compute_demand(group_ads(jobs(8)), [], config)
    (req,) = demand.requirements
    assert (req.vm_type, req.clouds, req.idle_jobs, req.vms_needed) == ("big", ["A", "B"], 8, 1)
    assert compute_demand(group_ads(jobs(9)), [], config).vms_needed == 2


def test_memory_bounds_the_packing(config):
    # 5000 MB each: three per 16000 MB VM although 8 cores would fit
    demand = compute_demand(group_ads(jobs(7, RequestMemory=5000)), [], config)
    assert demand.vms_needed == 3


def test_whole_vm_jobs(config):
    demand = compute_demand(group_ads(jobs(3, VMJobPerCore=False)), [], config)
    assert demand.vms_needed == 3


def test_mixed_shapes_share_a_partly_filled_vm(config):
    ads = jobs(3, RequestCpus=2) + jobs(2, owner="bob")
    # 3x2 cores = 6 on one VM; the two 1-core jobs fit the 2 cores left
    assert compute_demand(group_ads(ads), [], config).vms_needed == 1


def test_booting_vm_absorbs_jobs_before_new_ones(config):
    booting = SupplyVM("A-1", "big", "A", 8, 16000, 100 * KB_PER_GB, booting=True)
    demand = compute_demand(group_ads(jobs(10)), [booting], config)
    (req,) = demand.requirements
    assert (req.jobs_on_existing, req.vms_booting, req.vms_needed) == (8, 1, 1)


def test_room_on_a_joined_vm_is_used(config):
    room = SupplyVM("B-1", "big", "B", 3, 16000, 100 * KB_PER_GB, booting=False)
    demand = compute_demand(group_ads(jobs(3)), [room], config)
    (req,) = demand.requirements
    assert (req.jobs_on_existing, req.vms_with_room, req.vms_needed) == (3, 1, 0)


def test_supply_on_a_cloud_the_jobs_exclude_is_not_counted(config):
    booting = SupplyVM("B-1", "big", "B", 8, 16000, 100 * KB_PER_GB, booting=True)
    demand = compute_demand(group_ads(jobs(4, TargetClouds="A")), [booting], config)
    assert demand.vms_needed == 1 and demand.requirements[0].vms_booting == 0


def test_high_priority_jobs_take_supply_first(config):
    booting = SupplyVM("A-1", "big", "A", 8, 16000, 100 * KB_PER_GB, booting=True)
    ads = jobs(8, owner="low") + jobs(8, owner="high", VMHighPriority=True)
    demand = compute_demand(group_ads(ads), [booting], config)
    high = next(r for r in demand.requirements if r.high_priority)
    low = next(r for r in demand.requirements if not r.high_priority)
    assert (high.jobs_on_existing, high.vms_needed) == (8, 0)
    assert (low.jobs_on_existing, low.vms_needed) == (0, 1)


def test_different_images_are_different_requirements(config):
    ads = jobs(2, VMAMI="A:one") + jobs(2, VMAMI="A:two")
    demand = compute_demand(group_ads(ads), [], config)
    assert sorted(r.images["A"] for r in demand.requirements) == ["one", "two"]


def test_bad_and_unservable_jobs_are_reported_and_the_rest_served(config):
    ads = jobs(2) + jobs(1, owner="bob", VMMem="lots") + jobs(1, owner="carol", RequestCpus=64)
    demand = compute_demand(group_ads(ads), [], config)
    assert demand.idle_jobs == 4 and demand.vms_needed == 1
    assert sorted((r.owner, r.reasons[0]) for r in demand.rejected) == [
        ("bob", 'VMMem: expected a number of MB, got "lots"'),
        ("carol", "asks 64 of cores; VM type big has 8"),
    ]


def test_expression_evaluating_to_error(config):
    ads = jobs(1, RequestCpus=classad2.ExprTree('"x" * 2'))
    demand = compute_demand(group_ads(ads), [], config)
    assert demand.rejected[0].reasons == ["RequestCpus: evaluates to ERROR"]


# -- invariants ---------------------------------------------------------------------------

shape = st.tuples(
    st.integers(1, 8),  # cpus
    st.sampled_from([0, 1000, 2000, 4000, 8000, 16000]),  # MB
    st.integers(1, 40),  # jobs
)
supply_vm = st.tuples(st.integers(0, 8), st.integers(0, 16000), st.booleans(), st.sampled_from("AB"))


@settings(max_examples=150, deadline=None)
@given(shapes=st.lists(shape, min_size=1, max_size=6), supply=st.lists(supply_vm, max_size=5))
def test_packing_invariants(config, shapes, supply):
    ads = []
    for i, (cpus, memory, count) in enumerate(shapes):
        ads += jobs(count, owner=f"u{i}", RequestCpus=cpus, RequestMemory=memory)
    vms = [
        SupplyVM(f"{cloud}-{n}", "big", cloud, c, m, 100 * KB_PER_GB, booting)
        for n, (c, m, booting, cloud) in enumerate(supply)
    ]
    demand = compute_demand(group_ads(ads), vms, config)
    total_jobs = sum(count for _, _, count in shapes)
    assert demand.idle_jobs == total_jobs and not demand.rejected
    placed_on_existing = sum(r.jobs_on_existing for r in demand.requirements)
    new_vms = demand.vms_needed
    # never more new VMs than jobs left after the existing room was used
    assert new_vms <= total_jobs - placed_on_existing
    # never fewer than the cores (or memory) of the jobs not yet placed require
    cores_left = sum(c * n for c, _, n in shapes) - sum(c for c, _, _, _ in supply)
    memory_left = sum(m * n for _, m, n in shapes) - sum(m for _, m, _, _ in supply)
    assert new_vms >= math.ceil(cores_left / 8)
    assert new_vms >= math.ceil(memory_left / 16000)
    # supply used is never more than supply there is
    used = sum(r.vms_booting + r.vms_with_room for r in demand.requirements)
    assert used <= len(vms)


def test_groups_are_evaluated_once_per_autocluster(config):
    ads = jobs(1000)
    groups = group_ads(ads)
    assert len(groups) == 1 and groups[0].count == 1000
    assert groups[0].sample_ids == ["1.0", "1.1", "1.2", "1.3", "1.4"]


def test_problem_group_without_ad_attributes(config):
    group = JobGroup(ad=classad2.ClassAd({"Owner": "x"}), count=2, sample_ids=["7.0"])
    demand = compute_demand([group], [], config)
    assert demand.vms_needed == 1 and demand.idle_jobs == 2


def test_each_owners_need_is_kept_and_adds_up(config):
    ads = jobs(16, "alice") + jobs(8, "bob") + jobs(4, "carol", RequestCpus=2)
    (req,) = compute_demand(group_ads(ads), [], config).requirements
    assert req.vms_needed == 4
    # alice fills two VMs, bob one, carol's four 2-core jobs one
    assert req.need_by_owner == {"alice": 2, "bob": 1, "carol": 1}


def test_an_accounting_group_is_the_owner_fair_share_counts(config):
    ads = jobs(8, "alice", AcctGroup="group_cms") + jobs(8, "bob", AcctGroup="group_cms") + jobs(8, "carol")
    demand = compute_demand(group_ads(ads), [], config)
    assert demand.need_by_owner == {"carol": 1, "group_cms": 2}
    assert demand.requirements[0].owners == ["alice", "bob", "carol"]


def test_a_demand_written_before_owners_were_kept_has_one_unnamed_owner():
    assert need_by_owner({}, 3) == {"": 3}
    assert need_by_owner({"a": 1, "b": 1}, 4) == {"a": 2, "b": 2}  # edited by hand: split again
    assert need_by_owner({"a": 1, "b": 3}, 4) == {"a": 1, "b": 3}
