"""Fair share: who gets the new VMs when the clouds cannot serve everyone."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.plan import fairshare
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.fairshare import Ask, allocate, apportion, weights
from csctl.plan.placement import BootItem, OwnerShare, Unplaced, plan_boot


def config(policy: str = "equal", max_vms: int = 10, cap: int = 1000, second: str = "") -> object:
    return parse_config(f"""
[pool]
name = "pool.test"
collector = "127.0.0.1"
[policy]
fair_share = "{policy}"
max_new_vms_per_cycle = {cap}
[clouds.A]
driver = "local"
max_vms = {max_vms}
{second}
[vm_types.one]
cpus = 1
memory = 2000
disk = 10
images = {{ A = "img" }}
""")


def need(owners: dict[str, int], high: bool = False, clouds=("A",)) -> VMRequirement:
    total = sum(owners.values())
    return VMRequirement(
        "one",
        list(clouds),
        idle_jobs=total,
        vms_needed=total,
        owners=sorted(owners),
        need_by_owner=owners,
        high_priority=high,
    )


def test_two_users_wanting_20_on_a_cloud_limited_to_10_get_5_each():
    plan = plan_boot(Demand([need({"alice": 20, "bob": 20})], [], 40), [], config())
    assert plan.items == [BootItem("A", "one", 10, "img", None, owners={"alice": 5, "bob": 5})]
    assert plan.unplaced == [Unplaced("one", 30, "A is at its limits", {"alice": 15, "bob": 15})]
    why = "equal share among 2 owner(s); A is at its limits"
    assert plan.owners == [OwnerShare("alice", 20, 5, 1.0, why), OwnerShare("bob", 20, 5, 1.0, why)]


def test_an_owner_needing_less_than_its_share_leaves_the_rest_to_the_others():
    reqs = [need({"alice": 2}), need({"bob": 20, "carol": 20})]
    plan = plan_boot(Demand(reqs, [], 42), [], config())
    got = {o.owner: o.granted for o in plan.owners}
    assert got == {"alice": 2, "bob": 4, "carol": 4}
    assert plan.owners[0].why == "all it needs"


def test_the_per_cycle_cap_is_shared_too():
    plan = plan_boot(Demand([need({"alice": 20, "bob": 20})], [], 40), [], config(max_vms=100, cap=6))
    assert plan.items[0].owners == {"alice": 3, "bob": 3}
    assert plan.unplaced[0].reason == "policy.max_new_vms_per_cycle (6) reached"


def test_high_priority_jobs_still_come_first():
    reqs = [need({"alice": 20}), need({"bob": 8}, high=True)]
    plan = plan_boot(Demand(reqs, [], 28), [], config())
    assert {o.owner: o.granted for o in plan.owners} == {"alice": 2, "bob": 8}


def test_off_keeps_the_demands_order():
    reqs = [need({"alice": 20}), need({"bob": 20})]
    plan = plan_boot(Demand(reqs, [], 40), [], config("off"))
    assert {o.owner: o.granted for o in plan.owners} == {"alice": 10, "bob": 0}
    assert plan.owners[1].why.startswith("first come, first served (policy.fair_share = off); ")


def test_htcondor_shares_follow_the_negotiators_priorities():
    # condor_userprio: lower effective priority is a larger share (1 / priority)
    priorities = {"alice@pool.test": 500.0, "bob@pool.test": 1500.0, "<none>": 0.0}
    reqs = [need({"alice": 20, "bob": 20})]
    plan = plan_boot(Demand(reqs, [], 40), [], config("htcondor", max_vms=8), priorities=priorities)
    assert {o.owner: o.granted for o in plan.owners} == {"alice": 6, "bob": 2}


def test_htcondor_weights_for_groups_and_newcomers():
    priorities = {"group_cms.alice@d": 2.0, "group_cms.bob@d": 4.0, "carol@d": 8.0}
    found = weights("htcondor", ["group_cms", "carol", "dave"], priorities)
    # a group without its own record takes its best member's; a newcomer counts as the best known
    assert found == {"group_cms": 0.5, "carol": 0.125, "dave": 0.5}
    assert weights("htcondor", ["a", "b"], {}) == {"a": 1.0, "b": 1.0}
    assert weights("equal", ["a"], {"a@d": 9.0}) == {"a": 1.0}


def test_a_demand_without_owners_is_served_as_before():
    req = VMRequirement("one", ["A"], idle_jobs=30, vms_needed=30)
    plan = plan_boot(Demand([req], [], 30), [], config())
    assert plan.items == [BootItem("A", "one", 10, "img", None)]
    assert plan.owners == [] and plan.unplaced == [Unplaced("one", 20, "A is at its limits")]


def test_apportion_adds_up_and_favours_the_largest_remainders():
    assert apportion(10, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 4, "b": 3, "c": 3}
    assert apportion(1, {"a": 0.2, "b": 0.3}) == {"b": 1}
    assert apportion(0, {"a": 1.0}) == {}


# -- properties --------------------------------------------------------------------------

owner_names = st.sampled_from(["ann", "bo", "cy", "di", "ed", "fay"])


class Buckets:
    """Capacity as buckets; a requirement draws from its buckets in order."""

    def __init__(self, sizes: list[int], uses: list[list[int]]) -> None:
        self.left, self.uses = list(sizes), uses

    def place(self, requirement: int, owner: str, want: int) -> int:
        placed = 0
        for b in self.uses[requirement]:
            n = min(want - placed, self.left[b])
            self.left[b] -= n
            placed += n
        return placed


asks_strategy = st.lists(
    st.tuples(owner_names, st.integers(0, 3), st.integers(0, 30), st.booleans()), min_size=1, max_size=12
)


def _asks(raw) -> list[Ask]:
    merged: dict[tuple[str, int], Ask] = {}
    for owner, req, vms, high in raw:
        merged.setdefault((owner, req), Ask(owner, req, vms, high))
    return list(merged.values())


@settings(max_examples=300, deadline=None)
@given(raw=asks_strategy, capacity=st.integers(0, 60), policy=st.sampled_from(["equal", "htcondor"]))
def test_one_shared_limit_no_owner_below_its_share_while_another_is_above(raw, capacity, policy):
    asks = [Ask(a.owner, a.requirement, a.vms) for a in _asks(raw)]  # one priority class
    prios = {f"{o}@d": float(1 + (len(o) * 7 + ord(o[0])) % 5) for o in {a.owner for a in asks}}
    w = weights(policy, {a.owner for a in asks}, prios)
    buckets = Buckets([capacity], [[0]] * 4)
    granted = allocate(asks, policy, buckets.place, w)
    got = {o: sum(n for (k, _), n in granted.items() if k == o) for o in w}
    wanted = {o: sum(a.vms for a in asks if a.owner == o) for o in w}
    assert sum(got.values()) <= capacity  # never over the limit
    assert sum(got.values()) == min(capacity, sum(wanted.values()))  # and nothing left idle
    for a in w:
        if got[a] < wanted[a]:  # a is short: nobody is above a by more than one step
            for b in w:
                assert (got[b] - 1) / w[b] <= got[a] / w[a] + 1e-9


@settings(max_examples=300, deadline=None)
@given(
    raw=asks_strategy,
    sizes=st.lists(st.integers(0, 25), min_size=3, max_size=3),
    uses=st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True), min_size=4, max_size=4),
    seed=st.integers(0, 1000),
)
def test_many_limits_never_exceeded_deterministic_and_short_owners_are_blocked(raw, sizes, uses, seed):
    asks = _asks(raw)
    w = weights("equal", {a.owner for a in asks})
    first = Buckets(sizes, uses)
    granted = allocate(asks, "equal", first.place, w)
    assert all(left >= 0 for left in first.left)  # never over a limit
    for a in asks:
        assert granted.get((a.owner, a.requirement), 0) <= a.vms
        if granted.get((a.owner, a.requirement), 0) < a.vms:  # short: nothing more fits it
            assert all(first.left[b] == 0 for b in uses[a.requirement])
    # the same asks, in another order between owners, give the same grants
    by_owner: dict[str, list[Ask]] = {}
    for a in asks:
        by_owner.setdefault(a.owner, []).append(a)
    owners = list(by_owner)
    random.Random(seed).shuffle(owners)
    again = allocate([a for o in owners for a in by_owner[o]], "equal", Buckets(sizes, uses).place, w)
    assert again == granted


@pytest.mark.parametrize("policy", fairshare.POLICIES)
def test_every_policy_is_a_config_value(policy):
    assert config(policy).policy.fair_share == policy
