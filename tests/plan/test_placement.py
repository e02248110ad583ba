"""Boot placement: limits, priorities, per-cycle cap, backoff."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.model import Instance, Quota, VMState
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import BootItem, Unplaced, plan_boot

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def config(extra: str = "", cap: int = 100):
    return parse_config(f"""
[pool]
name = "pool.test"
collector = "127.0.0.1"
[policy]
max_new_vms_per_cycle = {cap}
[clouds.FGHotel]
driver = "openstack"
cloud = "fg"
priority = 10
max_vms = 3
[clouds.Hermes]
driver = "ec2"
region = "r"
priority = 5
max_cores = 40
[vm_types.pandacernvm]
cpus = 8
memory = 18000
disk = 160
images = {{ FGHotel = "cernvm", Hermes = "ami-1" }}
flavors = {{ FGHotel = "m1.xlarge", Hermes = "c1.xlarge" }}
{extra}
""")


def demand(n: int, clouds=("FGHotel", "Hermes"), **kw) -> Demand:
    req = VMRequirement("pandacernvm", list(clouds), idle_jobs=n * 8, vms_needed=n, **kw)
    return Demand([req], [], n * 8)


def instance(cloud: str, n: int, state=VMState.RUNNING) -> Instance:
    return Instance(f"{cloud}-{n}", cloud, "pandacernvm", state, f"p{n}")


def test_highest_priority_cloud_first_then_the_next():
    plan = plan_boot(demand(6), [], config())
    assert plan.items == [
        BootItem("FGHotel", "pandacernvm", 3, "cernvm", "m1.xlarge"),
        BootItem("Hermes", "pandacernvm", 3, "ami-1", "c1.xlarge"),
    ]
    assert plan.unplaced == []


def test_existing_instances_count_against_limits():
    existing = [instance("FGHotel", i) for i in range(2)] + [instance("Hermes", 9)]
    plan = plan_boot(demand(10), existing, config())
    # FGHotel: 3 - 2 = 1 left; Hermes: (40 - 8) // 8 = 4 left
    assert [(i.cloud, i.count) for i in plan.items] == [("FGHotel", 1), ("Hermes", 4)]
    assert plan.unplaced == [Unplaced("pandacernvm", 5, "FGHotel is at its limits; Hermes is at its limits")]


def test_deleted_instances_do_not_count():
    existing = [instance("FGHotel", i, VMState.DELETED) for i in range(3)]
    plan = plan_boot(demand(3, clouds=("FGHotel",)), existing, config())
    assert [(i.cloud, i.count) for i in plan.items] == [("FGHotel", 3)]


def test_per_cycle_cap():
    plan = plan_boot(demand(6), [], config(cap=4))
    assert plan.total == 4
    assert plan.unplaced == [Unplaced("pandacernvm", 2, "policy.max_new_vms_per_cycle (4) reached")]


def test_target_clouds_respected():
    plan = plan_boot(demand(2, clouds=("Hermes",)), [], config())
    assert [(i.cloud, i.count) for i in plan.items] == [("Hermes", 2)]


def test_backed_off_cloud_and_image_are_skipped_until_their_time():
    backoff = {"FGHotel": NOW + timedelta(minutes=5), "Hermes/ami-1": NOW + timedelta(minutes=1)}
    plan = plan_boot(demand(2), [], config(), backoff, NOW)
    assert plan.items == []
    assert plan.unplaced == [
        Unplaced("pandacernvm", 2, "FGHotel backed off until 12:05:00; Hermes backed off until 12:01:00")
    ]
    later = plan_boot(demand(2), [], config(), backoff, NOW + timedelta(minutes=2))
    assert [(i.cloud, i.count) for i in later.items] == [("Hermes", 2)]


def test_job_overrides_and_spot_price():
    d = demand(1, images={"Hermes": "ami-job"}, instance_types={"Hermes": "m5.large"}, max_price=0.1)
    plan = plan_boot(d, [], config(), {"FGHotel": NOW + timedelta(hours=1)}, NOW)
    assert plan.items == [BootItem("Hermes", "pandacernvm", 1, "ami-job", "m5.large", 0.1)]


def test_nothing_needed_nothing_planned():
    assert plan_boot(demand(0), [], config()).items == []


@settings(max_examples=200, deadline=None)
@given(
    needs=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    existing=st.tuples(st.integers(0, 6), st.integers(0, 8)),
    cap=st.integers(0, 50),
)
def test_never_more_than_limits_or_cap(needs, existing, cap):
    cfg = config(cap=cap)
    reqs = [VMRequirement("pandacernvm", ["FGHotel", "Hermes"], vms_needed=n) for n in needs]
    live = [instance("FGHotel", i) for i in range(existing[0])]
    live += [instance("Hermes", 100 + i) for i in range(existing[1])]
    plan = plan_boot(Demand(reqs, [], 0), live, cfg)
    per_cloud = {c: sum(i.count for i in plan.items if i.cloud == c) for c in ("FGHotel", "Hermes")}
    assert per_cloud["FGHotel"] + existing[0] <= max(3, existing[0])
    assert per_cloud["FGHotel"] <= max(0, 3 - existing[0])
    assert (per_cloud["Hermes"] + existing[1]) * 8 <= max(40, existing[1] * 8)
    assert plan.total <= cap
    assert plan.total + sum(u.count for u in plan.unplaced) == sum(needs)


def test_the_jobs_keep_alive_rides_with_the_boot_request_largest_first():
    reqs = [
        VMRequirement("pandacernvm", ["FGHotel"], idle_jobs=8, vms_needed=1, keep_alive_minutes=10),
        VMRequirement("pandacernvm", ["FGHotel"], idle_jobs=8, vms_needed=1, keep_alive_minutes=45),
        VMRequirement("pandacernvm", ["FGHotel"], idle_jobs=8, vms_needed=1),
    ]
    plan = plan_boot(Demand(reqs, [], 24), [], config())
    assert plan.items == [BootItem("FGHotel", "pandacernvm", 3, "cernvm", "m1.xlarge", keep_alive_minutes=45)]
    assert plan_boot(demand(1), [], config()).items[0].keep_alive_minutes is None


def test_the_clouds_quota_bounds_the_plan_and_the_plan_says_so():
    # FGHotel allows 3 by configuration, but its project has room for 1 more server only
    quotas = {"FGHotel": Quota(instances=1, cores=100, memory_mb=10**6), "Hermes": Quota(cores=16)}
    plan = plan_boot(demand(10), [], config(), quotas=quotas)
    assert [(i.cloud, i.count) for i in plan.items] == [("FGHotel", 1), ("Hermes", 2)]
    reason = (
        "FGHotel's quota is used up (left: 0 VMs, 92 cores, 982000 MB); "
        "Hermes's quota is used up (left: 0 cores)"
    )
    assert plan.unplaced == [Unplaced("pandacernvm", 7, reason)]


def test_a_quota_that_reports_nothing_leaves_the_configured_limits():
    plan = plan_boot(demand(10), [], config(), quotas={"FGHotel": Quota(), "Hermes": Quota()})
    assert [(i.cloud, i.count) for i in plan.items] == [("FGHotel", 3), ("Hermes", 5)]


def test_an_unknown_quota_is_said_and_the_configured_limits_hold():
    quotas = {"FGHotel": Quota(error="cloud FGHotel: get limits: timed out")}
    plan = plan_boot(demand(10), [], config(), quotas=quotas)
    assert [(i.cloud, i.count) for i in plan.items] == [("FGHotel", 3), ("Hermes", 5)]
    assert plan.notes == [
        "cloud FGHotel: quota unknown (cloud FGHotel: get limits: timed out); "
        "placed within its configured limits only"
    ]
    assert plan.unplaced[0].reason.startswith(
        "FGHotel is at its limits (quota unknown: cloud FGHotel: get limits: timed out; "
        "configured limits only)"
    )


def test_a_cloud_that_could_not_be_listed_is_named_with_its_error():
    plan = plan_boot(demand(2, clouds=("FGHotel",)), [], config(), unlisted={"FGHotel": "cloud FGHotel: 401"})
    assert plan.items == []
    assert plan.unplaced == [
        Unplaced("pandacernvm", 2, "FGHotel could not be listed (cloud FGHotel: 401): its usage is unknown")
    ]


@settings(max_examples=200, deadline=None)
@given(
    needs=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    quota=st.tuples(st.one_of(st.none(), st.integers(0, 5)), st.one_of(st.none(), st.integers(0, 60))),
    policy=st.sampled_from(["equal", "htcondor", "off"]),
)
def test_never_more_than_the_quota(needs, quota, policy):
    cfg = config().model_copy(update={"policy": config().policy.model_copy(update={"fair_share": policy})})
    reqs = [
        VMRequirement(
            "pandacernvm", ["FGHotel", "Hermes"], vms_needed=n, need_by_owner={f"u{i}": n} if n else {}
        )
        for i, n in enumerate(needs)
    ]
    quotas = {"Hermes": Quota(instances=quota[0], cores=quota[1])}
    plan = plan_boot(Demand(reqs, [], 0), [], cfg, quotas=quotas)
    hermes = sum(i.count for i in plan.items if i.cloud == "Hermes")
    assert quota[0] is None or hermes <= quota[0]
    assert quota[1] is None or hermes * 8 <= quota[1]
    assert sum(i.count for i in plan.items if i.cloud == "FGHotel") <= 3
    assert plan.total + sum(u.count for u in plan.unplaced) == sum(needs)
    assert all(sum(i.owners.values()) == i.count for i in plan.items)
