"""A VM booted for VMJobPerCore = false jobs, on the real test pool: its startd has one
static slot holding every resource of the VM type, and that slot runs one job at a time,
as demand packed it. The payload comes from the engine's own boot request."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import htcondor2
import pytest

from csctl.clouds.registry import make_cloud
from csctl.context.tokens import read_signing_key
from csctl.engine.boot import boot_request
from csctl.plan.placement import BootItem

WAIT = 60  # seconds; a local VM's slot appears in ~3 s, a job starts in a few more


@pytest.fixture
def local(testbed_config):
    cloud = make_cloud("local", testbed_config.clouds["local"])
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))
    yield cloud
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))


def slots(config, batch: str) -> list:
    return htcondor2.Collector(config.pool.collector).query(
        htcondor2.AdType.Startd,
        f'CsctlBatch == "{batch}"',
        ["Name", "SlotType", "Cpus", "TotalCpus", "Memory", "TotalMemory", "State"],
    )


def wait(what: str, check, seconds: float = WAIT):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.5)
    return result


@pytest.mark.pool
def test_a_vm_for_one_job_per_vm_has_one_slot_that_runs_one_job(local, testbed_config, clean_queue):
    config = testbed_config
    batch = f"local-{uuid.uuid4().hex[:8]}"
    item = BootItem("local", "small", 1, "host", None, single_slot=True)
    key = read_signing_key(config.pool.signing_key)
    local.boot(boot_request(config, local, item, key, datetime.now(UTC), batch, 1))

    (slot,) = wait("the VM's slot", lambda: slots(config, batch))
    small = config.vm_types["small"]
    assert (slot["SlotType"], slot["Cpus"], slot["TotalCpus"]) == ("Static", small.cpus, small.cpus)
    assert slot["Memory"] == small.memory  # the whole VM, not a share of it

    # two one-core jobs: a partitionable slot would run both at once; this VM runs one
    submit = {
        "executable": "/bin/sleep",
        "arguments": "4",
        "requirements": 'VMType =?= "small"',
        "should_transfer_files": "NO",
        "request_cpus": "1",
        "+VMJobPerCore": "false",
    }
    cluster = clean_queue.submit(submit, count=2)
    schedd = clean_queue.schedd()

    def running() -> list:
        schedd.reschedule()
        return schedd.query(f"ClusterId == {cluster} && JobStatus == 2", ["ProcId", "RemoteHost"])

    first = wait("a job to run", running)
    assert len(first) == 1 and batch in first[0]["RemoteHost"]
    # the collector hears of the claim at the startd's next update (UPDATE_INTERVAL = 5)
    wait("the slot's claim", lambda: [s for s in slots(config, batch) if s["State"] == "Claimed"], 15)
    assert len(slots(config, batch)) == 1  # claimed whole: no dynamic slot carved from it
    for _ in range(6):  # never a second job beside the first (between the two: none)
        assert len(running()) <= 1
        time.sleep(0.5)
