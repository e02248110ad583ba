"""A small fleet for the reconcile and retire planners: one config with two local clouds
and one VM type, instances as a cloud lists them and slot ads as the collector gives them."""

from datetime import UTC, datetime, timedelta

from csctl.config import parse_config
from csctl.model import Instance, StartdSlot, VMState

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONFIG = """
[pool]
name = "p"
collector = "127.0.0.1"
[policy]
join_timeout_minutes = 20
max_lifetime_hours = {lifetime}
[clouds.A]
driver = "local"
[clouds.B]
driver = "local"
enabled = {b_enabled}
keep_alive_minutes = 30
[vm_types.t]
cpus = 4
memory = 8000
disk = 10
keep_alive_minutes = 10
images = {{ A = "x", B = "y" }}
"""


def config(lifetime=0, b_enabled="true"):
    return parse_config(CONFIG.format(lifetime=lifetime, b_enabled=b_enabled))


def inst(vm_id, cloud="A", state=VMState.RUNNING, minutes=5):
    return Instance(vm_id, cloud, "t", state, f"p-{vm_id}", booted_at=NOW - timedelta(minutes=minutes))


def slot(
    vm_id, state="Unclaimed", draining=False, idle_minutes=60, cloud="A", job=None, name="slot1", carved=0
):
    return StartdSlot(
        f"{name}@{vm_id}",
        vm_id,
        vm_id,
        "t",
        cloud,
        "Partitionable" if name == "slot1" else "Dynamic",
        state,
        "Idle",
        4,
        8000,
        1000,
        draining,
        "<127.0.0.1:1>",
        job,
        int((NOW - timedelta(minutes=idle_minutes)).timestamp()),
        dynamic_slots=carved,
    )


def busy(vm_id, cloud="A", draining=False):
    return [
        slot(vm_id, cloud=cloud, draining=draining, carved=1),
        slot(vm_id, "Claimed", draining, cloud=cloud, job="7.0", name="slot1_1"),
    ]
