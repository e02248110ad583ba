"""Retirement planning (pure), and confirming a drain from the ads that follow it."""

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.model import VMState
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.reconcile import Status, reconcile
from csctl.plan.retire import Action, plan_retire
from tests.plan.fleet import CONFIG, NOW, busy, config, inst, slot

NO_DEMAND = Demand([], [], 0)


def plan(instances, slots, demand=NO_DEMAND, cfg=None, force=False):
    cfg = cfg or config()
    return plan_retire(reconcile(instances, slots, cfg, NOW), demand, cfg, NOW, force)


def test_idle_past_keep_alive_is_drained_not_terminated():
    p = plan([inst("a")], [slot("a", idle_minutes=11)])
    assert [(r.csctl_id, r.action) for r in p.retirements] == [("a", Action.DRAIN)]
    assert p.retirements[0].reason == "idle, no job needs t on A (kept 10 min)"


def test_idle_within_keep_alive_is_kept_and_cloud_keep_alive_wins():
    assert plan([inst("a")], [slot("a", idle_minutes=5)]).retirements == []
    assert plan([inst("b", "B")], [slot("b", cloud="B", idle_minutes=20)]).retirements == []


def test_idle_vm_whose_type_is_needed_is_kept():
    demand = Demand([VMRequirement("t", ["A"], idle_jobs=3)], [], 3)
    p = plan([inst("a")], [slot("a", idle_minutes=600)], demand)
    assert p.retirements == [] and p.kept == {"a": "needed"}


def test_busy_vm_is_kept_even_when_not_needed():
    p = plan([inst("a")], busy("a"))
    assert p.retirements == [] and p.kept == {"a": "running jobs"}


def test_lifetime_and_disabled_cloud_drain_busy_vms():
    p = plan([inst("a", minutes=61)], busy("a"), cfg=config(lifetime=1))
    assert [(r.action, r.reason) for r in p.retirements] == [
        (Action.DRAIN, "past the maximum lifetime of 1 h")
    ]
    p = plan([inst("b", "B")], busy("b", "B"), cfg=config(b_enabled="false"))
    assert [(r.action, r.reason) for r in p.retirements] == [
        (Action.DRAIN, "cloud B is disabled: emptying it")
    ]


def test_drained_vm_is_terminated_and_draining_one_waits():
    p = plan([inst("done"), inst("wait")], [slot("done", draining=True), *busy("wait", draining=True)])
    assert [(r.csctl_id, r.action) for r in p.retirements] == [("done", Action.TERMINATE)]
    assert p.kept == {"wait": "draining: 1 job(s) still running"}


def test_force_names_the_jobs_it_kills():
    p = plan([inst("wait")], busy("wait", draining=True), force=True)
    (r,) = p.retirements
    assert (r.action, r.jobs) == (Action.TERMINATE, ("7.0",))


def test_stopped_is_terminated_and_booting_or_lost_untouched():
    p = plan([inst("off", state=VMState.STOPPED), inst("new")], [slot("orphan")])
    assert [(r.csctl_id, r.action) for r in p.retirements] == [("off", Action.TERMINATE)]


vm_strategy = st.tuples(
    st.sampled_from(["A", "B"]),
    st.sampled_from(["none", "idle", "busy", "draining-idle", "draining-busy"]),
    st.integers(0, 300),  # age in minutes
    st.integers(0, 100),  # idle minutes
)


@settings(max_examples=200, deadline=None)
@given(
    vms=st.lists(vm_strategy, max_size=8),
    lifetime=st.integers(0, 3),
    enabled=st.booleans(),
    needed=st.booleans(),
)
def test_never_terminates_a_vm_running_a_job_unless_forced(vms, lifetime, enabled, needed):
    instances, slots = [], []
    for i, (cloud, kind, age, idle) in enumerate(vms):
        vm_id = f"vm{i}"
        instances.append(inst(vm_id, cloud, minutes=age))
        if kind == "idle":
            slots.append(slot(vm_id, cloud=cloud, idle_minutes=idle))
        elif kind == "busy":
            slots += busy(vm_id, cloud)
        elif kind == "draining-idle":
            slots.append(slot(vm_id, cloud=cloud, draining=True))
        elif kind == "draining-busy":
            slots += busy(vm_id, cloud, draining=True)
    cfg = config(lifetime=lifetime, b_enabled=str(enabled).lower())
    demand = Demand([VMRequirement("t", ["A", "B"], idle_jobs=1)], [], 1) if needed else NO_DEMAND
    report = reconcile(instances, slots, cfg, NOW)
    claimed = {v.csctl_id for v in report.vms if v.claimed}
    for r in plan_retire(report, demand, cfg, NOW).retirements:
        if r.action is Action.TERMINATE:
            assert r.csctl_id not in claimed
    forced = plan_retire(report, demand, cfg, NOW, force=True)
    for r in forced.retirements:
        if r.action is Action.TERMINATE and r.csctl_id in claimed:
            assert r.jobs and "(forced)" in r.reason


def test_drain_deadline_terminates_and_names_the_jobs():
    cfg = parse_config(
        CONFIG.format(lifetime=0, b_enabled="true").replace(
            "join_timeout_minutes = 20", "join_timeout_minutes = 20\ndrain_deadline_minutes = 30"
        )
    )
    started = int((NOW - timedelta(minutes=31)).timestamp())
    slots = [s.__class__(**{**s.__dict__, "drain_started": started}) for s in busy("old", draining=True)]
    recent = [
        s.__class__(**{**s.__dict__, "drain_started": started + 120}) for s in busy("new", draining=True)
    ]
    p = plan_retire(reconcile([inst("old"), inst("new")], slots + recent, cfg, NOW), NO_DEMAND, cfg, NOW)
    assert [(r.csctl_id, r.action, r.jobs) for r in p.retirements] == [("old", Action.TERMINATE, ("7.0",))]
    assert p.kept == {"new": "draining: 1 job(s) still running"}


def test_a_vm_under_image_test_is_neither_retired_nor_counted_as_room():
    from csctl.plan.supply import supply_from_slots

    probe = [s.__class__(**{**s.__dict__, "image_test": "img-1"}) for s in [slot("probe", idle_minutes=600)]]
    p = plan([inst("probe")], probe)
    assert p.retirements == [] and p.kept == {"probe": "under csctl image-test"}
    assert supply_from_slots(probe) == []


def test_keep_alive_counts_from_the_last_job_on_a_partitionable_slot():
    # joined 60 min ago, last dynamic slot gone 5 min ago: within the 10 min keep-alive
    last_job = int((NOW - timedelta(minutes=5)).timestamp())
    pslot = slot("a", idle_minutes=60).__class__(
        **{**slot("a", idle_minutes=60).__dict__, "dynamic_slots_changed": last_job}
    )
    p = plan([inst("a")], [pslot])
    assert p.retirements == [] and p.kept == {"a": "within keep-alive"}
    # without the dynamic-slot time the same VM would be retired
    assert [r.action for r in plan([inst("a")], [slot("a", idle_minutes=60)]).retirements] == [Action.DRAIN]


class StalePool:
    """A pool whose collector answers with the ads it had, one answer per query."""

    def __init__(self, answers):
        self.answers = list(answers)

    def csctl_slots(self):
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_drained_vm_is_terminated_only_once_its_own_ad_shows_the_drain():
    from csctl.engine.retire import confirm_drained

    stale = [slot("a"), slot("b")]  # published before the drain: a claim may be missing
    fresh = [slot("a", draining=True), *busy("b", draining=True)]
    naps = []
    idle, running = confirm_drained(StalePool([stale, fresh]), ["a", "b"], 10, naps.append)
    assert (idle, running, naps) == (["a"], ["b"], [1])
    # never confirmed within the settle time: neither, left for the next cycle
    assert confirm_drained(StalePool([stale]), ["a"], 0, naps.append) == ([], [])


def test_a_claim_whose_dynamic_slot_ad_is_late_still_counts():
    """The partitionable slot's ad, published after the drain, says one dynamic slot
    exists; the collector has no ad for that dynamic slot yet."""
    from csctl.engine.retire import confirm_drained

    pslot = slot("a", draining=True, carved=1)
    assert confirm_drained(StalePool([[pslot]]), ["a"], 0, [].append) == ([], ["a"])
    p = plan([inst("a")], [pslot])
    assert p.retirements == [] and p.kept == {"a": "draining: 1 job(s) still running"}
    report = reconcile([inst("b")], [slot("b", carved=2)], config(), NOW)
    assert report.vms[0].status is Status.BUSY and report.vms[0].jobs == 2
    forced = plan([inst("a")], [pslot], force=True).retirements
    assert [(r.action, r.jobs) for r in forced] == [(Action.TERMINATE, ("?",))]


def static_slots(vm_id, *draining):
    """Static slots of one VM, one per flag: whether that slot's ad says Draining."""
    return [
        dataclasses.replace(slot(vm_id, draining=d), name=f"slot{n}@{vm_id}", slot_type="Static")
        for n, d in enumerate(draining, 1)
    ]


def test_a_vm_is_confirmed_drained_only_when_every_slot_it_owns_says_so():
    from csctl.engine.retire import confirm_drained

    # one static slot's ad is fresh, the other's predates the drain
    assert confirm_drained(StalePool([static_slots("a", True, False)]), ["a"], 0, [].append) == ([], [])
    assert confirm_drained(StalePool([static_slots("a", True, True)]), ["a"], 0, [].append) == (["a"], [])


def test_a_draining_vm_with_a_slot_ad_from_before_the_drain_is_kept():
    p = plan([inst("a")], static_slots("a", True, False))
    assert p.retirements == []
    assert p.kept == {"a": "draining: waiting for every slot's ad to show the drain"}
    assert [r.reason for r in plan([inst("a")], static_slots("a", True, True)).retirements] == ["drained"]


def test_the_jobs_keep_alive_a_vm_was_booted_for_wins_over_type_and_cloud():
    # type t keeps 10 min, cloud B 30 min; the VM advertises the jobs' VMKeepAlive of 60
    asked = [dataclasses.replace(slot("a", idle_minutes=40), keep_alive_minutes=60)]
    p = plan([inst("a")], asked)
    assert p.retirements == [] and p.kept == {"a": "within keep-alive"}
    late = [dataclasses.replace(slot("a", idle_minutes=61), keep_alive_minutes=60)]
    assert [r.reason for r in plan([inst("a")], late).retirements] == [
        "idle, no job needs t on A (kept 60 min)"
    ]
    cloud_b = [dataclasses.replace(slot("b", cloud="B", idle_minutes=40), keep_alive_minutes=60)]
    assert plan([inst("b", "B")], cloud_b).retirements == []
