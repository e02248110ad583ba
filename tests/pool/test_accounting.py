"""The ledger on the real pool: jobs run on a local VM booted by `csctl run`, the VM
retires, and the ledger holds the VM's life and the jobs with the wall and CPU time the
schedd's history shows; the APEL record and the report agree with it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from csctl.engine.accounting.ledger import open_ledger
from tests.pool.bed import config_text, csctl

pytestmark = pytest.mark.pool

ACCOUNTING = '\n[accounting]\nsite_name = "CA-TEST-T2"\n'
# a job that spends a few seconds of CPU (the test bed's starter may still report 0 for it:
# the ledger must hold whatever the history says)
BURN = "i=0\nwhile [ $i -lt 1500000 ]; do i=$((i+1)); done\n"


def wait_for(predicate, timeout: float, what: str, schedd=None):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, what
        if schedd is not None:
            schedd.reschedule()
        time.sleep(1)
    return result


def test_the_ledger_holds_the_vm_and_the_jobs_the_history_shows(
    clean_queue, local_cloud, condor_pool, tmp_path
):
    config = tmp_path / "csctl.toml"
    config.write_text(config_text(condor_pool, tmp_path) + ACCOUNTING)
    script = Path(condor_pool.jobs_dir) / f"burn-{tmp_path.name}.sh"
    script.write_text(BURN)
    script.chmod(0o755)
    schedd = clean_queue.schedd()
    cluster = clean_queue.submit(
        {
            "executable": "/bin/sh",
            "arguments": str(script),
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
        },
        count=2,
    )
    first = csctl(config, "run")
    assert first.returncode == 0, first.stderr
    wait_for(
        lambda: not schedd.query(f"ClusterId == {cluster}", ["JobStatus"]), 90, "the jobs did not run", schedd
    )

    def retired():
        result = csctl(config, "run")
        assert result.returncode == 0, result.stderr
        return not local_cloud.list_instances(condor_pool.trust_domain)

    wait_for(retired, 60, "the idle VM was not retired")
    assert csctl(config, "run").returncode == 0  # this cycle no longer sees the VM: it ended

    history = schedd.history(
        f"ClusterId == {cluster}",
        [
            "GlobalJobId",
            "ClusterId",
            "ProcId",
            "RemoteWallClockTime",
            "RemoteUserCpu",
            "RemoteSysCpu",
            "MachineAttrCsctlId0",
            "Owner",
        ],
    )
    assert len(history) == 2
    (vm_id,) = {ad["MachineAttrCsctlId0"] for ad in history}
    ledger, warnings = open_ledger(tmp_path / "state")
    with ledger:
        (vm,) = [v for v in ledger.vms() if v.csctl_id == vm_id]
        jobs = {j.job: j for j in ledger.jobs([vm_id])[vm_id]}
    assert warnings == []
    assert (vm.cloud, vm.vm_type, vm.cores, vm.memory, vm.disk) == ("local", "small", 2, 2000, 10)
    assert vm.booted <= (vm.joined or 0) <= vm.terminated and vm.terminated is not None
    assert set(jobs) == {ad["GlobalJobId"] for ad in history}
    for ad in history:
        job = jobs[ad["GlobalJobId"]]
        assert (job.owner, job.wall) == (ad["Owner"], int(ad["RemoteWallClockTime"]))
        assert job.cpu == pytest.approx(ad["RemoteUserCpu"] + ad["RemoteSysCpu"])
        assert job.wall > 0

    dry = csctl(config, "accounting", "apel", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    records = [r for r in dry.stdout.split("\n%%\n") if f"MachineName: {vm_id}\n" in r]
    fields = [dict(line.split(": ", 1) for line in r.splitlines() if ": " in line) for r in records]
    assert fields[-1]["Status"] == "completed" and fields[-1]["EndTime"] == str(vm.terminated)
    assert sum(int(f["CpuDuration"]) for f in fields) == pytest.approx(
        sum(j.cpu for j in jobs.values()), abs=1
    )

    # the adapter's history read resumes after its mark, on the real schedd: from the older
    # of the two jobs, only the newer one comes back
    from csctl.config import load_config
    from csctl.pool.htcondor import HTCondorPool

    pool = HTCondorPool(load_config(config).pool)
    everything = pool.job_history({})
    ours = [j for j in everything.jobs if j.job in jobs]
    assert [j.job for j in ours] == [ad["GlobalJobId"] for ad in history]  # newest first, as the history
    (schedd_name,) = everything.marks
    older = history[1]
    resumed = pool.job_history({schedd_name: f"{older['ClusterId']}.{older['ProcId']}"})
    assert [j.job for j in resumed.jobs] == [history[0]["GlobalJobId"]]
    assert resumed.marks == everything.marks and pool.job_history(everything.marks).jobs == []

    report = csctl(config, "--json", "accounting", "report", "--since", "2000-01-01", "--by", "owner")
    rows = {r["key"]: r for r in json.loads(report.stdout)["rows"]}
    assert rows[history[0]["Owner"]]["jobs"] >= 2
