"""`csctl retire` and `csctl join-check` on the real pool with local VMs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.pool.bed import config_text, csctl

pytestmark = pytest.mark.pool


def write_config(condor_pool, tmp_path: Path, extra_local: str = "", policy: str = "") -> Path:
    text = config_text(condor_pool, tmp_path)
    text = text.replace('driver = "local"\n', f'driver = "local"\n{extra_local}', 1)
    if policy:
        text = text.replace("[pool]", f"[policy]\n{policy}\n\n[pool]", 1)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


def wait_for(predicate, timeout: float, what: str, schedd=None):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, what
        if schedd is not None:
            schedd.reschedule()
        time.sleep(1)
    return result


def vms(config: Path) -> dict[str, str]:
    result = csctl(config, "--json", "join-check")
    assert result.returncode == 0, result.stderr
    return {vm["csctl_id"]: vm["status"] for vm in json.loads(result.stdout)["vms"]}


def test_running_job_finishes_before_its_vm_is_terminated(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    schedd = clean_queue.schedd()
    cluster = clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "12",
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
        }
    )
    assert csctl(config, "boot").returncode == 0
    wait_for(
        lambda: schedd.query(f"ClusterId == {cluster} && JobStatus == 2", ["JobStatus"]),
        60,
        "the job did not start on the booted VM",
        schedd,
    )
    (vm_id,) = vms(config)
    # the collector learns of the claim a few seconds after the schedd
    wait_for(lambda: vms(config) == {vm_id: "busy"}, 20, "the VM does not show as busy")
    # busy and its type still has a running job: nothing to retire
    assert json.loads(csctl(config, "--json", "retire", "--dry-run").stdout)["retirements"] == []

    # declare the cloud's downtime: its VMs are drained, the running job is not killed
    disabled = write_config(condor_pool, tmp_path, extra_local="enabled = false\n")
    result = csctl(disabled, "--json", "retire")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)["result"]
    assert (done["drained"], done["terminated"], done["draining"]) == ([vm_id], [], [vm_id])
    wait_for(lambda: vms(disabled) == {vm_id: "draining"}, 20, "the VM does not show as draining")
    assert schedd.query(f"ClusterId == {cluster}", ["JobStatus"])[0]["JobStatus"] == 2

    wait_for(lambda: not schedd.query(f"ClusterId == {cluster}", ["JobStatus"]), 60, "the job did not finish")
    (job,) = schedd.history(f"ClusterId == {cluster}", ["JobStatus", "ExitCode", "NumJobStarts"], match=1)
    assert (job["JobStatus"], job["ExitCode"], job["NumJobStarts"]) == (4, 0, 1)

    def terminated():
        out = json.loads(csctl(disabled, "--json", "retire").stdout)
        return out["result"]["terminated"] == [vm_id] or None

    wait_for(terminated, 30, "the drained VM was not terminated")
    assert local_cloud.list_instances(condor_pool.trust_domain) == []


def test_idle_vm_past_keep_alive_is_retired_in_one_cycle(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    schedd = clean_queue.schedd()
    cluster = clean_queue.submit(
        {"executable": "/bin/true", "requirements": 'VMType =?= "small"', "should_transfer_files": "NO"}
    )
    assert csctl(config, "boot").returncode == 0
    wait_for(
        lambda: not schedd.query(f"ClusterId == {cluster}", ["JobStatus"]), 60, "the job did not run", schedd
    )
    (vm_id,) = wait_for(lambda: {k: v for k, v in vms(config).items() if v == "idle"}, 30, "VM not idle")
    plan = json.loads(csctl(config, "--json", "retire", "--dry-run").stdout)
    assert [(r["csctl_id"], r["action"]) for r in plan["retirements"]] == [(vm_id, "drain")]
    done = json.loads(csctl(config, "--json", "retire").stdout)["result"]
    assert (done["drained"], done["terminated"]) == ([vm_id], [vm_id])
    assert local_cloud.list_instances(condor_pool.trust_domain) == []


def test_never_joined_vm_is_terminated_by_fix_with_its_console_saved(local_cloud, condor_pool, tmp_path):
    # a VM whose startd may not advertise (no token) never joins
    config = write_config(condor_pool, tmp_path, policy="join_timeout_minutes = 1")
    from csctl.config import load_config
    from csctl.context.render import Batch, render_user_data
    from csctl.context.tokens import SigningKey
    from csctl.model import TAG_POOL, BootRequest

    cfg = load_config(config)
    text = render_user_data(
        cfg,
        Batch("local-deadbeef", "small", "local", "none"),
        SigningKey("POOL", b"x"),
        __import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    (vm,) = local_cloud.boot(
        BootRequest("local-deadbeef", "small", 1, "host", None, text.encode(), {TAG_POOL: cfg.pool.name})
    )
    assert vms(config) == {vm.csctl_id: "booting"}
    record = Path(str(condor_pool.root)) / "var/lib/csctl-testbed/local" / vm.csctl_id / "instance.json"
    data = json.loads(record.read_text())
    data["booted_at"] = "2000-01-01T00:00:00+00:00"
    record.write_text(json.dumps(data))
    assert vms(config) == {vm.csctl_id: "never-joined"}
    result = csctl(config, "--json", "join-check", "--fix")
    fixed = json.loads(result.stdout)["fixed"]
    assert fixed["terminated"] == [vm.csctl_id]
    console = Path(fixed["consoles"][vm.csctl_id])
    assert console.stat().st_mode & 0o777 == 0o600
    assert "never-joined" in console.read_text().splitlines()[0]
    backoff = json.loads((tmp_path / "state" / "backoff.json").read_text())
    assert backoff["failures"] == {"local/host": 1}
    assert local_cloud.list_instances(cfg.pool.name) == []
