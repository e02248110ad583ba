"""`csctl demand` against the real HTCondor test pool."""

from __future__ import annotations

import json
import time

import htcondor2
import pytest

from csctl.errors import ExitCode
from csctl.plan.demand import compute_demand
from csctl.plan.supply import supply_from_slots
from csctl.pool.htcondor import HTCondorPool
from testbed import pool
from tests.conftest import DATA
from tests.pool.bed import csctl

pytestmark = pytest.mark.pool


def seed_job() -> dict[str, str]:
    """The seed's Cloud Scheduler job file, as a submit description."""
    return dict(htcondor2.Submit((DATA / "seed.job").read_text()))


def test_seed_job_file_needs_one_pandacernvm_per_job(clean_queue, pool_config):
    clean_queue.submit(seed_job(), count=3)
    snapshot = HTCondorPool(pool_config.pool).idle_jobs()
    assert snapshot.errors == [] and len(snapshot.schedds) == 1
    assert sum(g.count for g in snapshot.groups) == 3
    demand = compute_demand(snapshot.groups, [], pool_config)
    (req,) = demand.requirements
    assert req.vm_type == "pandacernvm" and req.clouds == ["FGHotel", "Hermes"]
    # +VMCPUCores = 8 with RequestCpus 1: packed eight to a VM
    assert (req.idle_jobs, req.vms_needed) == (3, 1)
    assert req.images == {"FGHotel": "cernvm-batch-2.6", "Hermes": "ami-00000042"}
    assert req.keep_alive_minutes == 30 and req.owners == [clean_queue.user]


def test_modern_requests_and_bad_attributes_reported_per_job(clean_queue, pool_config_file):
    clean_queue.submit(
        {
            "executable": "/bin/true",
            "request_cpus": "4",
            "request_memory": "9000",
            "should_transfer_files": "NO",
        },
        count=5,
    )
    bad = clean_queue.submit({"executable": "/bin/true", "+VMMem": '"lots"', "should_transfer_files": "NO"})
    huge = clean_queue.submit(
        {"executable": "/bin/true", "request_memory": "64000", "should_transfer_files": "NO"}
    )
    result = csctl(pool_config_file, "demand", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["idle_jobs"] == 7
    assert len(data["requirements"]) == 1, data["rejected"]
    (req,) = data["requirements"]
    # 4 cores and 9000 MB each: one job per 8-core 18000 MB VM by memory... two fit (18000)
    assert (req["idle_jobs"], req["vms_needed"]) == (5, 3)
    reasons = {r["job_ids"][0]: r["reasons"] for r in data["rejected"]}
    assert reasons == {
        f"{bad}.0": ['VMMem: expected a number of MB, got "lots"'],
        f"{huge}.0": ["asks 64000 MB of memory; VM type pandacernvm has 18000 MB"],
    }


def test_explain_names_the_missing_machine_attribute(clean_queue, pool_config_file):
    cluster = clean_queue.submit(
        {"executable": "/bin/true", "requirements": "TARGET.HasGPU =?= true", "should_transfer_files": "NO"}
    )
    result = csctl(pool_config_file, "demand", "--explain")
    assert result.returncode == 0, result.stderr
    assert f"1 job(s) of {clean_queue.user} ({cluster}.0):" in result.stdout
    assert "refers to TARGET.HasGPU, which the VM type does not define" in result.stdout


def test_snapshot_from_condor_q_json_gives_the_same_demand(clean_queue, pool_config, tmp_path):
    clean_queue.submit(seed_job(), count=9)
    ads = clean_queue.schedd().query("JobStatus == 1")
    path = tmp_path / "jobs.json"
    path.write_text("[" + ",".join(ad.printJson() for ad in ads) + "]")
    from csctl.engine.demand import read_job_file

    from_file = compute_demand(read_job_file(path), [], pool_config)
    live = compute_demand(HTCondorPool(pool_config.pool).idle_jobs().groups, [], pool_config)
    assert from_file.vms_needed == live.vms_needed == 2
    assert from_file.requirements[0].images == live.requirements[0].images


def test_room_on_a_joined_csctl_vm_is_subtracted(clean_queue, condor_pool, pool_config):
    # a csctl VM as the collector rule admits it: the batch's token, an id of that batch
    batch = "fghotel-demand0"
    p = condor_pool.paths
    token_dir = f"{pool.STATE_DIR}/test-tokens/{batch}"
    p.host(token_dir).mkdir(parents=True, exist_ok=True)
    identity = f"vm-{batch}@{pool_config.pool.name}"
    p.host(f"{token_dir}/token").write_text(
        pool.mint_token(p, identity, "ADVERTISE_STARTD", "ADVERTISE_MASTER")
    )
    p.host(f"{token_dir}/token").chmod(0o600)
    startd = clean_queue.start_startd(
        "csctl-demand-vm",
        f"""
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS
SEC_TOKEN_DIRECTORY = {token_dir}
NUM_CPUS = 8
MEMORY = 18000
START = False
CsctlId = "{batch}-0"
CsctlBatch = "{batch}"
CsctlPool = "{pool_config.pool.name}"
CsctlType = "pandacernvm"
CsctlCloud = "FGHotel"
VMType = "pandacernvm"
STARTD_ATTRS = $(STARTD_ATTRS) CsctlId CsctlBatch CsctlPool CsctlType CsctlCloud VMType
NUM_SLOTS_TYPE_1 = 1
SLOT_TYPE_1 = 100%
SLOT_TYPE_1_PARTITIONABLE = True
""",
    )
    htcondor_pool = HTCondorPool(pool_config.pool)
    try:
        deadline = time.monotonic() + 30
        while not (slots := htcondor_pool.csctl_slots()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [(s.csctl_id, s.cpus, s.slot_type) for s in slots] == [(f"{batch}-0", 8, "Partitionable")]
        clean_queue.submit(seed_job(), count=10)
        demand = compute_demand(htcondor_pool.idle_jobs().groups, supply_from_slots(slots), pool_config)
    finally:
        startd.shut_down()  # its token may advertise, not command: condor_off would be refused
    deadline = time.monotonic() + 30
    while htcondor_pool.csctl_slots():  # gone, so that later tests see an empty pool
        assert time.monotonic() < deadline, "the startd's ad stayed after its shutdown"
        time.sleep(0.5)
    (req,) = demand.requirements
    assert (req.jobs_on_existing, req.vms_with_room, req.vms_needed) == (8, 1, 1)


def test_unreachable_schedd_list_is_one_line(pool_config_file, tmp_path):
    text = pool_config_file.read_text().replace("schedds = []", 'schedds = ["no-such-schedd"]')
    config = tmp_path / "other.toml"
    config.write_text(text)
    result = csctl(config, "demand")
    assert result.returncode == ExitCode.POOL_UNREACHABLE
    assert (
        result.stderr.splitlines()[0]
        == "error: collector 127.0.0.1:9618 knows no schedd named no-such-schedd"
    )
