"""Rooms: EC2's vCPU limits bound only the instance families and market they count."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.model import Quota, VcpuLimit, family_letters
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import plan_boot

STANDARD = frozenset({"a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"})


def on_demand(left: int) -> VcpuLimit:
    return VcpuLimit("L-1216C47A (On-Demand Standard)", STANDARD, False, left)


def spot(left: int) -> VcpuLimit:
    return VcpuLimit("L-34B43A08 (Spot Standard)", STANDARD, True, left)


def config(flavor: str, price: str = ""):
    return parse_config(f"""
[pool]
name = "pool.test"
collector = "127.0.0.1"
[policy]
max_new_vms_per_cycle = 1000
[clouds.aws]
driver = "ec2"
region = "us-east-1"
max_vms = 100
{price}
[vm_types.t]
cpus = 2
memory = 4000
disk = 10
images = {{ aws = "ami-1" }}
flavors = {{ aws = "{flavor}" }}
""")


def demand(n: int) -> Demand:
    return Demand([VMRequirement("t", ["aws"], idle_jobs=n, vms_needed=n)], [], n)


@pytest.mark.parametrize(
    ("instance_type", "letters"),
    [
        ("m5.large", "m"),
        ("im4gn.large", "im"),
        ("inf2.xlarge", "inf"),
        ("dl1.24xlarge", "dl"),
        ("trn1.2xlarge", "trn"),
        ("u-6tb1.metal", "u"),
        ("C7GN.Large", "c"),
        ("", ""),
    ],
)
def test_family_letters(instance_type, letters):
    assert family_letters(instance_type) == letters


def test_an_instance_of_a_family_letter_prefix_is_not_covered():
    # d is Standard, dl is not; t is Standard, trn is not; i is Standard, inf is not
    limit = on_demand(8)
    assert limit.covers("d3.xlarge", False) and not limit.covers("dl1.24xlarge", False)
    assert limit.covers("t3.micro", False) and not limit.covers("trn1.2xlarge", False)
    assert limit.covers("i4i.large", False) and not limit.covers("inf2.xlarge", False)
    assert not limit.covers("m5.large", True) and not limit.covers(None, False)


def test_the_vcpu_limit_bounds_its_families():
    quota = Quota(instances=50, vcpus=(on_demand(9), spot(100)))
    plan = plan_boot(demand(10), [], config("m5.large"), quotas={"aws": quota})
    assert plan.total == 4  # 9 vCPUs left, 2 per VM
    assert plan.unplaced[0].reason == (
        "aws's quota is used up (left: 46 VMs, 1 vCPUs under L-1216C47A (On-Demand Standard))"
    )


def test_another_family_is_not_bound_by_the_standard_limit():
    quota = Quota(vcpus=(on_demand(0),))
    plan = plan_boot(demand(10), [], config("g4dn.xlarge"), quotas={"aws": quota})
    assert plan.total == 10 and plan.unplaced == []


def test_a_spot_vm_counts_against_the_spot_limit():
    quota = Quota(vcpus=(on_demand(0), spot(6)))
    plan = plan_boot(demand(10), [], config("c5.large", "max_price = 0.2"), quotas={"aws": quota})
    assert plan.total == 3
    reason = "aws's quota is used up (left: 0 vCPUs under L-34B43A08 (Spot Standard))"
    assert plan.unplaced[0].reason == reason


def test_two_types_share_one_limit():
    cfg = parse_config("""
[pool]
name = "p"
collector = "127.0.0.1"
[clouds.aws]
driver = "ec2"
region = "r"
[vm_types.small]
cpus = 2
memory = 1000
disk = 1
images = { aws = "ami-1" }
flavors = { aws = "m5.large" }
[vm_types.big]
cpus = 8
memory = 1000
disk = 1
images = { aws = "ami-1" }
flavors = { aws = "r5.2xlarge" }
""")
    reqs = [
        VMRequirement("big", ["aws"], idle_jobs=2, vms_needed=2, high_priority=True),
        VMRequirement("small", ["aws"], idle_jobs=9, vms_needed=9),
    ]
    plan = plan_boot(Demand(reqs, [], 11), [], cfg, quotas={"aws": Quota(vcpus=(on_demand(20),))})
    assert {i.vm_type: i.count for i in plan.items} == {"big": 2, "small": 2}


@given(left=st.integers(0, 200), cpus=st.integers(1, 16), want=st.integers(0, 300))
def test_never_over_the_vcpu_limit(left, cpus, want):
    cfg = config("m5.large").model_copy()
    cfg.vm_types["t"] = cfg.vm_types["t"].model_copy(update={"cpus": cpus})
    plan = plan_boot(demand(want), [], cfg, quotas={"aws": Quota(vcpus=(on_demand(left),))})
    assert plan.total * cpus <= left
    assert plan.total == min(want, left // cpus, 100)
