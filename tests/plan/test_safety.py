"""No ad never means never joined, and an incomplete view of the pool destroys nothing."""

import dataclasses
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from csctl.model import VMState
from csctl.plan.demand import Demand
from csctl.plan.reconcile import Status, reconcile, unseen_memory
from csctl.plan.retire import Action, plan_retire
from csctl.plan.safety import hold_reasons
from tests.plan.fleet import NOW, busy, config, inst, slot

NO_DEMAND = Demand([], [], [], 0)


def joined(vm_id, minutes=90):
    """An instance whose cloud remembers that its VM joined the pool."""
    return dataclasses.replace(inst(vm_id, minutes=minutes), joined_at=NOW - timedelta(minutes=minutes - 2))


def test_a_vm_that_joined_once_and_lost_its_ad_is_unseen_not_never_joined():
    report = reconcile([joined("a-0"), inst("b-0", minutes=90)], [], config(), NOW)
    assert {vm.csctl_id: vm.status for vm in report.vms} == {"a-0": Status.UNSEEN, "b-0": Status.NEVER_JOINED}
    assert [vm.csctl_id for vm in report.failed()] == ["b-0"]


def test_a_vm_the_schedd_runs_a_job_on_is_never_never_joined():
    report = reconcile([inst("a-0", minutes=90)], [], config(), NOW, running={"a-0": ["s#7.0"]})
    (vm,) = report.vms
    assert vm.status is Status.UNSEEN and vm.in_use and vm.jobs == 1
    assert report.failed() == []


def test_a_job_the_schedd_sees_makes_an_idle_looking_vm_busy():
    report = reconcile([inst("a-0")], [slot("a-0")], config(), NOW, running={"a-0": ["s#7.0"]})
    assert report.vms[0].status is Status.BUSY and report.vms[0].idle_since is None


def test_the_cloud_saying_error_or_stopped_still_wins():
    vms = [
        dataclasses.replace(joined("a-0"), state=VMState.ERROR),
        dataclasses.replace(joined("b-0"), state=VMState.STOPPED),
    ]
    assert [vm.status for vm in reconcile(vms, [], config(), NOW).vms] == [Status.ERROR, Status.STOPPED]


def test_an_unseen_vm_waits_then_goes_once_no_job_runs_there():
    cfg = config()  # join timeout 20 min
    since = {"a-0": NOW - timedelta(minutes=5), "b-0": NOW - timedelta(minutes=25)}
    report = reconcile([joined("a-0"), joined("b-0"), joined("c-0")], [slot("x-0")], cfg, NOW,
                       running={"c-0": ["s#1.0"]}, unseen_since=since)  # fmt: skip
    plan = plan_retire(report, NO_DEMAND, cfg, NOW)
    assert [(r.csctl_id, r.action) for r in plan.retirements] == [("b-0", Action.TERMINATE)]
    assert plan.kept["a-0"] == "no startd ad for 5 min: waiting up to 20 min for it"
    assert plan.kept["c-0"] == "no startd ad, but the schedd runs 1 job(s) there"


def test_csctl_remembers_since_when_a_vm_is_unseen_and_forgets_it_when_seen():
    report = reconcile([joined("a-0"), joined("b-0")], [slot("b-0")], config(), NOW)
    earlier = NOW - timedelta(minutes=3)
    assert unseen_memory(report, {"a-0": earlier, "b-0": earlier, "gone-0": earlier}, NOW) == {"a-0": earlier}
    assert unseen_memory(report, {}, NOW) == {"a-0": NOW}


def test_many_joined_vms_without_ads_at_once_hold_every_destructive_action():
    vms = [joined(f"v{i}-0") for i in range(4)]
    long_ago = NOW - timedelta(hours=5)
    since = {"v2-0": long_ago, "v3-0": long_ago}
    report = reconcile(vms, busy("v0-0") + [slot("v1-0")], config(), NOW, unseen_since=since)
    reasons = hold_reasons(report, [])
    assert reasons == [
        "2 of 4 VMs that joined the pool have no startd ad now (a collector restart or a network partition?)"
    ]
    plan = plan_retire(report, NO_DEMAND, config(), NOW, force=True, hold=reasons)
    assert plan.retirements == [] and plan.held == reasons
    assert plan.kept["v2-0"].startswith("would terminate (joined once") and plan.kept["v2-0"].endswith(
        reasons[0]
    )


def test_one_vm_without_its_ad_is_not_a_broken_view():
    vms = [joined(f"v{i}-0") for i in range(5)]
    report = reconcile(vms, [s for i in range(4) for s in [slot(f"v{i}-0")]], config(), NOW)
    assert hold_reasons(report, []) == []


def test_a_schedd_or_collector_that_did_not_answer_holds():
    report = reconcile([], [], config(), NOW)
    assert hold_reasons(report, ["schedd s2: timed out"]) == [
        "the pool did not answer in full: schedd s2: timed out"
    ]


@given(
    st.lists(
        st.tuples(
            st.booleans(),  # joined once
            st.booleans(),  # has an ad
            st.booleans(),  # the schedd runs a job there
            st.integers(0, 600),  # minutes since boot
            st.integers(0, 600),  # minutes unseen
        ),
        max_size=12,
    )
)
def test_never_terminates_a_vm_a_schedd_runs_a_job_on(fleet):
    instances, slots, running, since = [], [], {}, {}
    for i, (was_joined, has_ad, job, age, unseen) in enumerate(fleet):
        vm_id = f"v{i}-0"
        instances.append(joined(vm_id, age) if was_joined else inst(vm_id, minutes=age))
        slots += [slot(vm_id)] if has_ad else []
        running.update({vm_id: [f"s#{i}.0"]} if job else {})
        since[vm_id] = NOW - timedelta(minutes=unseen)
    report = reconcile(instances, slots, config(), NOW, running=running, unseen_since=since)
    plan = plan_retire(report, NO_DEMAND, config(), NOW, hold=hold_reasons(report, []))
    terminated = set(plan.ids(Action.TERMINATE)) | {vm.csctl_id for vm in report.failed()}
    assert not terminated & set(running)
