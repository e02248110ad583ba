"""Reconciliation (pure): every VM classified from the clouds' instances and the pool's ads."""

from csctl.model import VMState
from csctl.plan.reconcile import Status, reconcile
from tests.plan.fleet import NOW, busy, config, inst, slot


def test_classification():
    instances = [
        inst("booting", minutes=5),
        inst("late", minutes=25),
        inst("broken", state=VMState.ERROR),
        inst("off", state=VMState.STOPPED),
        inst("idle"),
        inst("busy"),
        inst("draining"),
        inst("gone", state=VMState.DELETED),
    ]
    slots = [
        slot("idle"),
        *busy("busy"),
        slot("draining", draining=True),
        slot("orphan"),
        slot("unknown", cloud="C"),
    ]
    report = reconcile(instances, slots, config(), NOW, unlisted_clouds={"C"})
    assert {v.csctl_id: v.status for v in report.vms} == {
        "booting": Status.BOOTING,
        "late": Status.NEVER_JOINED,
        "broken": Status.ERROR,
        "off": Status.STOPPED,
        "idle": Status.IDLE,
        "busy": Status.BUSY,
        "draining": Status.DRAINING,
        "orphan": Status.LOST,
    }
    assert report.unlisted_clouds == ["C"]
