"""`csctl image-test` end to end on the real pool with local VMs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import load_config
from tests.conftest import testbed_config_text as config_text

pytestmark = pytest.mark.pool

CPUS = min(2, os.cpu_count() or 1)  # the local "VM" is this host: promise no more than it has
TYPES = f"""
[vm_types.probed]
cpus = {CPUS}
memory = 1000
disk = 1
condor_version = "23.0.0"
images = {{ local = "host" }}
"""
# a payload whose contextualization fails, after printing the VM's token (never shown by csctl)
BROKEN_TEMPLATE = """#cloud-config
write_files:
  - path: /etc/condor/config.d/50-csctl.conf
    content: ${condor_config}
  - path: /etc/condor/tokens.d/csctl-vm
    permissions: "0600"
    content: ${token}
  - path: /usr/local/sbin/csctl-vm-setup
    permissions: "0755"
    content: |
      echo "image: my token is $$(cat "$$CSCTL_CONDOR_ETC/tokens.d/csctl-vm")"
      echo "image: no condor here" >&2
      exit 1
runcmd:
  - [/usr/local/sbin/csctl-vm-setup]
"""
FAST = ("--boot-timeout", "30", "--join-timeout", "60", "--job-timeout", "60", "--drain-timeout", "30")
PHASES = [
    "requested",
    "running in the cloud",
    "joined the pool",
    "probe job matched",
    "probe job finished",
    "drained",
    "terminated",
]


def write_config(condor_pool, tmp_path: Path, pool_extra: str = "") -> Path:
    text = config_text(condor_pool, extra=TYPES).replace(
        f'state_dir = "{condor_pool.root}/var/lib/csctl-test-state"', f'state_dir = "{tmp_path}/state"'
    )
    text = text.replace("[pool]\n", f"[pool]\n{pool_extra}", 1)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


def csctl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "csctl", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def local_cloud(condor_pool, tmp_path):
    cfg = load_config(write_config(condor_pool, tmp_path))
    cloud = make_cloud("local", cfg.clouds["local"])
    cloud.terminate(cloud.list_instances(cfg.pool.name))
    yield cloud
    cloud.terminate(cloud.list_instances(cfg.pool.name))


def probe_jobs(condor_pool) -> list:
    return condor_pool.schedd().query("CsctlImageTest =!= undefined", ["ClusterId", "JobStatus"])


def states(report: dict) -> dict[str, str]:
    return {p["phase"]: p["state"] for p in report["phases"]}


def test_good_images_pass_every_phase_in_parallel(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    result = csctl(
        config, "--json", "image-test", "--cloud", "local", "--type", "probed", "--type", "small", *FAST
    )
    print(result.stderr)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["exit_code"] == 0
    by_type = {r["vm_type"]: r for r in out["results"]}
    assert set(by_type) == {"probed", "small"}
    for report in by_type.values():
        assert [p["state"] for p in report["phases"]] == ["passed"] * 7, report["phases"]
        assert report["console"] is None and not report["kept"]
    checks = {c["resource"]: c for c in by_type["probed"]["checks"]}
    assert (checks["cpus"]["promised"], checks["cpus"]["advertised"], checks["cpus"]["ok"]) == (
        CPUS,
        CPUS,
        True,
    )
    assert (checks["memory MB"]["promised"], checks["memory MB"]["advertised"]) == (1000, 1000)
    assert (checks["arch"]["promised"], checks["arch"]["advertised"], checks["arch"]["ok"]) == (
        "X86_64",
    ) * 2 + (True,)
    assert by_type["small"]["probe"]["values"]["ad.TotalMemory"] == "2000"
    assert local_cloud.list_instances(condor_pool.trust_domain) == []
    assert probe_jobs(condor_pool) == []


def test_broken_image_fails_at_joined_with_its_console_and_leaves_nothing(local_cloud, condor_pool, tmp_path):
    template = tmp_path / "broken.yaml"
    template.write_text(BROKEN_TEMPLATE)
    config = write_config(condor_pool, tmp_path, pool_extra=f'user_data_template = "{template}"\n')
    result = csctl(config, "image-test", "--cloud", "local", "--type", "probed", *FAST)
    print(result.stdout, result.stderr)
    assert result.returncode == 13, result.stderr
    assert "probed: FAILED at joined the pool: the VM is stopped and never joined" in result.stderr
    # the local VM's console: its setup script's output, the token redacted
    assert "==> setup.log <==" in result.stderr and "image: no condor here" in result.stderr
    assert "image: my token is <redacted>" in result.stderr
    (saved,) = (tmp_path / "state" / "console").iterdir()
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.read_text().splitlines()[0].endswith("failed at joined the pool")
    assert f"saved to {saved}" in result.stderr
    assert "eyJ" not in result.stderr + saved.read_text()  # no IDTOKEN, ever
    assert local_cloud.list_instances(condor_pool.trust_domain) == []


def test_failing_probe_script_fails_at_finished(clean_queue, local_cloud, condor_pool, tmp_path):
    script = tmp_path / "cvmfs-check.sh"
    script.write_text("#!/bin/sh\necho 'cvmfs: /cvmfs/atlas.cern.ch not mounted'\nexit 1\n")
    config = write_config(condor_pool, tmp_path)
    result = csctl(
        config,
        "--json",
        "image-test",
        "--cloud",
        "local",
        "--type",
        "probed",
        "--probe-script",
        str(script),
        *FAST,
    )
    assert result.returncode == 15, result.stderr
    (report,) = json.loads(result.stdout)["results"]
    assert states(report) == {
        "requested": "passed",
        "running": "passed",
        "joined": "passed",
        "matched": "passed",
        "finished": "failed",
        "drained": "skipped",
        "terminated": "skipped",
    }
    assert report["phases"][4]["detail"] == "the probe script exited with 1"
    assert report["probe"]["site_output"] == "cvmfs: /cvmfs/atlas.cern.ch not mounted"
    assert "cvmfs: /cvmfs/atlas.cern.ch not mounted" in result.stderr
    assert report["console_path"] and report["kept"] is False
    assert local_cloud.list_instances(condor_pool.trust_domain) == []
    assert probe_jobs(condor_pool) == []


def test_keep_leaves_the_vm_and_says_so(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    # --quiet silences warnings, not this one
    result = csctl(config, "-q", "image-test", "--cloud", "local", "--type", "probed", "--keep", *FAST)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stderr
    (vm,) = local_cloud.list_instances(condor_pool.trust_domain)
    assert vm.state.value == "running"
    assert f"warning: probed: KEPT {vm.csctl_id} on cloud local (--keep)" in result.stderr
    assert result.stdout.count("kept (--keep)") == 2  # drained, terminated
    assert result.stdout.splitlines()[-1] == "probed: PASSED"


def test_ctrl_c_cleans_up_and_exits_130(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "csctl", "--config", str(config), "image-test", "--cloud", "local"]
        + ["--type", "probed", *FAST],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # interrupt while it waits for the probe job
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "probe job matched: ..." in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = "".join(lines) + err
    assert proc.returncode == 130, err
    assert "probed: probe job matched: failed" in err and "interrupted" in err
    assert local_cloud.list_instances(condor_pool.trust_domain) == []
    deadline = time.monotonic() + 10
    while probe_jobs(condor_pool) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert probe_jobs(condor_pool) == []


def test_a_type_promising_more_than_the_vm_has_exits_18(clean_queue, local_cloud, condor_pool, tmp_path):
    cpus = (os.cpu_count() or 1) + 2
    greedy = f'\n[vm_types.greedy]\ncpus = {cpus}\nmemory = 1000\ndisk = 1\nimages = {{ local = "host" }}\n'
    config = write_config(condor_pool, tmp_path)
    config.write_text(config.read_text() + greedy)
    result = csctl(config, "--json", "image-test", "--cloud", "local", "--type", "greedy", *FAST)
    assert result.returncode == 18, result.stderr
    (report,) = json.loads(result.stdout)["results"]
    assert set(states(report).values()) == {"passed"}
    (cpus,) = [c for c in report["checks"] if c["resource"] == "cpus"]
    assert (cpus["ok"], cpus["note"]) == (False, f"the VM has only {os.cpu_count()}")
    assert "greedy: the VM does not offer what its type promises (exit 18)" in result.stderr
    assert local_cloud.list_instances(condor_pool.trust_domain) == []


def test_an_image_without_a_type_reports_what_it_offers(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    args = ("--json", "image-test", "--cloud", "local", "--image", "host", "--flavor", "any", *FAST)
    result = csctl(config, *args)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["results"]
    assert (report["label"], report["vm_type"], report["flavor"]) == ("host", "image-test", "any")
    checks = {c["resource"]: c for c in report["checks"]}
    assert {c["ok"] for c in checks.values()} == {None}  # nothing promised, nothing judged
    assert checks["cpus"]["detected"] == os.cpu_count()
    assert checks["arch"]["advertised"] == "X86_64"
    assert local_cloud.list_instances(condor_pool.trust_domain) == []
