"""The HTCondor test bed itself, against the real pool (testbed/pool.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed import pool
from testbed.fixtures_pool import CondorPool

pytestmark = pytest.mark.pool


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll *check* until it returns something truthy; fail naming *what*."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)
    return result


def startd_ads(condor_pool: CondorPool, testbed_id: str) -> list[Any]:
    import htcondor2

    collector = htcondor2.Collector(condor_pool.collector)
    return collector.query(htcondor2.AdType.Startd, constraint=f'TestbedId == "{testbed_id}"')


def vm_config(testbed_id: str) -> str:
    # What a VM's contextualization does: tag its ads so they can be found.
    return f'NUM_CPUS = 1\nTestbedId = "{testbed_id}"\nSTARTD_ATTRS = $(STARTD_ATTRS) TestbedId\n'


def test_collector_answers(condor_pool: CondorPool) -> None:
    import htcondor2

    ads = htcondor2.Collector(condor_pool.collector).query(htcondor2.AdType.Collector)
    # COLLECTOR_NAME, then "@" and the host's name.
    assert [ad["Name"].split("@")[0] for ad in ads] == [condor_pool.pool_name]


def test_base_pool_has_no_execute_slots(condor_pool: CondorPool) -> None:
    import htcondor2

    ads = htcondor2.Collector(condor_pool.collector).query(
        htcondor2.AdType.Startd, constraint="TestbedId =?= undefined"
    )
    assert ads == []


def test_submitted_jobs_are_idle_and_owned_by_the_user(clean_queue: CondorPool) -> None:
    cluster = clean_queue.submit(
        {"executable": "/bin/true", "+VMMem": "18000", "MY.VMType": '"pandacernvm"'}, count=3
    )

    jobs = clean_queue.schedd().query(
        constraint=f"ClusterId == {cluster}",
        projection=["Owner", "JobStatus", "VMMem", "VMType", "FileSystemDomain"],
    )
    assert len(jobs) == 3
    for job in jobs:
        assert job["Owner"] == "csctl-user"
        assert job["JobStatus"] == 1  # idle: the base pool has no slots
        assert job["VMMem"] == 18000
        assert job["VMType"] == "pandacernvm"
        assert job["FileSystemDomain"] == clean_queue.filesystem_domain


def test_extra_startd_joins_runs_a_job_and_leaves_on_stop(clean_queue: CondorPool) -> None:
    startd = clean_queue.start_startd("vm-run", vm_config("vm-run"))
    ads = wait_for("the startd's ad", lambda: startd_ads(clean_queue, "vm-run"), timeout=30)
    assert ads[0]["FileSystemDomain"] == clean_queue.filesystem_domain

    cluster = clean_queue.submit(
        {
            "executable": "/bin/true",
            "should_transfer_files": "NO",
            "requirements": 'TARGET.TestbedId == "vm-run"',
        }
    )
    schedd = clean_queue.schedd()
    schedd.reschedule()  # match now, not at the next negotiation cycle
    done = wait_for(
        "the job to complete",
        lambda: schedd.history(
            constraint=f"ClusterId == {cluster}", projection=["ExitCode", "Owner"], match=1
        ),
    )
    assert (done[0]["ExitCode"], done[0]["Owner"]) == (0, "csctl-user")

    startd.stop()
    assert not startd.running()
    wait_for("the startd's ad to leave", lambda: not startd_ads(clean_queue, "vm-run"), 30)


def test_startd_can_join_with_a_scoped_idtoken(condor_pool: CondorPool) -> None:
    # As csctl's VMs will: no FS, only a token limited to advertising.
    p = condor_pool.paths
    token = pool.mint_token(
        p, f"vm-tok@{condor_pool.trust_domain}", "ADVERTISE_STARTD", "ADVERTISE_MASTER", lifetime=600
    )
    token_dir = f"{pool.STATE_DIR}/test-tokens/vm-tok"
    p.host(token_dir).mkdir(parents=True, exist_ok=True)
    p.host(f"{token_dir}/token").write_text(token + "\n")
    p.host(f"{token_dir}/token").chmod(0o600)  # HTCondor refuses readable token files
    extra = (
        vm_config("vm-tok") + "SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS\n"
        f"SEC_TOKEN_DIRECTORY = {token_dir}\n"
    )

    startd = condor_pool.start_startd("vm-tok", extra)
    ads = wait_for("the startd's ad", lambda: startd_ads(condor_pool, "vm-tok"), timeout=30)
    assert ads[0]["AuthenticatedIdentity"] == f"vm-tok@{condor_pool.trust_domain}"
    assert ads[0]["AuthenticationMethod"] == "IDTOKENS"

    startd.kill()
    assert not startd.running()
    assert processes_of(p, startd) == []


def processes_of(p: pool.Paths, startd: pool.Startd) -> list[str]:
    """Processes started with this startd's config (its master passes on its environment)."""
    marker = f"CONDOR_CONFIG={startd.config}".encode()
    found = []
    for pid in pool.pids_in_root(p):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found.append(f"{pool.process_name(pid)}[{pid}]")
    return found
