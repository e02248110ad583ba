"""`csctl boot` on the real pool with the local cloud: demand in, VMs that join out."""

from __future__ import annotations

import json
import time

import htcondor2
import pytest

from tests.pool.bed import config_text, csctl

pytestmark = pytest.mark.pool


@pytest.fixture
def config_file(condor_pool, tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_text(config_text(condor_pool, tmp_path))
    return path


def test_boot_starts_what_demand_needs_and_the_jobs_run(
    clean_queue, config_file, local_cloud, testbed_config
):
    cluster = clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "1",
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
            "+VMKeepAlive": "25",
        },
        count=3,
    )
    plan = json.loads(csctl(config_file, "--json", "boot", "--dry-run").stdout)
    assert [(i["cloud"], i["vm_type"], i["count"], i["keep_alive_minutes"]) for i in plan["items"]] == [
        ("local", "small", 2, 25)
    ]

    result = csctl(config_file, "--json", "boot")
    assert result.returncode == 0, result.stderr
    (outcome,) = json.loads(result.stdout)["outcomes"]
    assert (outcome["asked"], len(outcome["started"]), outcome["calls"], outcome["error"]) == (2, 2, 1, None)
    batch = outcome["started"][0].rsplit("-", 1)[0]
    assert outcome["started"] == [f"{batch}-0", f"{batch}-1"]

    # a second cycle right away sees the two VMs booting (not yet joined, or joined
    # with room) and boots nothing more
    again = json.loads(csctl(config_file, "--json", "boot", "--dry-run").stdout)
    assert again["total"] == 0

    schedd = clean_queue.schedd()
    deadline = time.monotonic() + 90
    while schedd.query(f"ClusterId == {cluster}", ["JobStatus"]):
        assert time.monotonic() < deadline, "jobs did not run on the booted VMs"
        schedd.reschedule()
        time.sleep(1)
    hosts = {
        ad["LastRemoteHost"] for ad in schedd.history(f"ClusterId == {cluster}", ["LastRemoteHost"], match=3)
    }
    assert all(batch in host for host in hosts)
    ads = htcondor2.Collector(testbed_config.pool.collector).query(
        htcondor2.AdType.Startd, f'CsctlBatch == "{batch}"', ["AuthenticatedIdentity", "CsctlKeepAlive"]
    )
    assert {ad["AuthenticatedIdentity"] for ad in ads} == {f"vm-{batch}@{testbed_config.pool.name}"}
    # the jobs' VMKeepAlive stays with the VMs after the jobs have left the queue
    assert {ad["CsctlKeepAlive"] for ad in ads} == {25}
