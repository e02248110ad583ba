"""`csctl run` as cron runs it, end to end on the real pool with local VMs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import htcondor2
import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import load_config
from csctl.engine.state import cycle_lock
from csctl.errors import ExitCode
from tests.conftest import testbed_config_text as config_text

pytestmark = pytest.mark.pool

TYPES = """
[vm_types.big]
cpus = 4
memory = 4000
disk = 10
images = { local = "host" }
"""
# a second, higher-priority cloud whose API is down: every call fails at once
BROKEN_CLOUD = """
[clouds.down]
driver = "ec2"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:9"
max_attempts = 1
connect_timeout = 1
priority = 100
"""


def write_config(condor_pool, tmp_path: Path, extra: str = TYPES + BROKEN_CLOUD) -> Path:
    text = config_text(condor_pool, extra=extra)
    text = text.replace(
        f'state_dir = "{condor_pool.root}/var/lib/csctl-test-state"', f'state_dir = "{tmp_path}/state"'
    )
    text = text.replace("[pool]", "[policy]\nmax_new_vms_per_cycle = 3\n\n[pool]", 1)
    text = text.replace('driver = "local"\n', 'driver = "local"\nmax_vms = 3\n', 1)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


def run(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    return subprocess.run(
        [sys.executable, "-m", "csctl", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture
def local_cloud(condor_pool, tmp_path):
    cfg = load_config(write_config(condor_pool, tmp_path))
    cloud = make_cloud("local", cfg.clouds["local"])
    cloud.terminate(cloud.list_instances(cfg.pool.name))
    yield cloud
    cloud.terminate(cloud.list_instances(cfg.pool.name))


def csctl_startds(condor_pool) -> list:
    return htcondor2.Collector(condor_pool.collector).query(
        htcondor2.AdType.Startd, f'CsctlPool == "{condor_pool.trust_domain}"', ["Name", "CsctlType"]
    )


def test_cron_cycles_drain_the_queue_and_leave_nothing_behind(
    clean_queue, local_cloud, condor_pool, tmp_path
):
    config = write_config(condor_pool, tmp_path)
    metrics = tmp_path / "csctl.prom"
    small = clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "3",
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
        },
        count=4,
    )
    big = clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "3",
            "request_cpus": "4",
            "+VMType": '"big"',
            "should_transfer_files": "NO",
        },
        count=2,
    )
    schedd = clean_queue.schedd()
    seen_types, most_vms, cycles = set(), 0, 0
    deadline = time.monotonic() + 240
    while True:
        result = run(config, "--json", "run", "--metrics-file", str(metrics))
        cycles += 1
        # the broken cloud fails every cycle; the local one is still served
        assert result.returncode == ExitCode.PARTIAL, result.stderr
        report = json.loads(result.stdout)
        assert any("cloud down" in e for e in report["errors"])
        instances = local_cloud.list_instances(condor_pool.trust_domain)
        most_vms = max(most_vms, len(instances))
        seen_types |= {i.vm_type for i in instances}
        queue_empty = not schedd.query("true", ["ClusterId"])
        if queue_empty and not instances and not csctl_startds(condor_pool):
            break
        assert time.monotonic() < deadline, f"not done after {cycles} cycles: {report}"
        schedd.reschedule()
        time.sleep(2)
    assert seen_types == {"small", "big"}
    assert most_vms <= 3  # clouds.local.max_vms
    done = schedd.history(
        f"ClusterId == {small} || ClusterId == {big}",
        ["JobStatus", "ExitCode", "NumJobStarts", "LastRemoteHost"],
        match=6,
    )
    assert len(done) == 6
    assert all((j["JobStatus"], j["ExitCode"], j["NumJobStarts"]) == (4, 0, 1) for j in done), done
    text = metrics.read_text()
    assert "csctl_idle_jobs 0" in text and "csctl_cycle_seconds" in text


def test_a_second_run_exits_at_once_while_one_holds_the_lock(condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    with cycle_lock(tmp_path / "state"):
        started = time.monotonic()
        result = run(config, "run")
    assert result.returncode == ExitCode.LOCKED
    assert (
        result.stderr.splitlines()[0]
        == f"error: another csctl run holds {tmp_path}/state/run.lock (pid {os.getpid()})"
    )
    assert time.monotonic() - started < 10


def test_killed_mid_cycle_then_run_again_leaks_nothing(clean_queue, local_cloud, condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path, extra=TYPES)
    clean_queue.submit(
        {"executable": "/bin/true", "requirements": 'VMType =?= "small"', "should_transfer_files": "NO"},
        count=2,
    )
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "csctl", "--config", str(config), "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # kill it while it boots: wait for the first VM directory to appear
    work = Path(str(condor_pool.root)) / "var/lib/csctl-testbed/local"
    deadline = time.monotonic() + 30
    while not any(work.glob("*/instance.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    schedd = clean_queue.schedd()
    deadline = time.monotonic() + 180
    while True:
        result = run(config, "run")
        assert result.returncode == 0, result.stderr
        if not schedd.query("true", ["ClusterId"]) and not local_cloud.list_instances(
            condor_pool.trust_domain
        ):
            break
        assert time.monotonic() < deadline, result.stdout
        schedd.reschedule()
        time.sleep(2)
    leftovers = [p for p in work.glob("*") if p.is_dir()]
    assert leftovers == []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: a queue is judged in one piece")
def test_a_cycle_judges_its_queue_in_forked_parts(
    clean_queue, local_cloud, condor_pool, tmp_path, caplog, monkeypatch
):
    """In a cycle, demand's queue is cut into parts judged by forked children (the
    threshold is lowered to two groups): no other thread is left running by then."""
    from csctl.context.tokens import read_signing_key
    from csctl.engine import judging
    from csctl.engine.cycle import run_cycle
    from csctl.plan.backoff import Backoff
    from csctl.pool.htcondor import HTCondorPool

    path = write_config(condor_pool, tmp_path, TYPES)
    path.write_text(path.read_text() + "\n[accounting]\nledger = false\n")
    config = load_config(path)
    for memory in (600, 700, 800):  # three autoclusters
        clean_queue.submit(
            {"executable": "/bin/true", "request_memory": str(memory), "requirements": 'VMType =?= "big"'}
        )
    caplog.set_level(logging.DEBUG, "csctl.engine.judging")
    monkeypatch.setattr(judging, "MIN_GROUPS", 2)
    report, _, _, _ = run_cycle(
        config,
        HTCondorPool(config.pool),
        {"local": local_cloud},
        read_signing_key(config.pool.signing_key),
        Backoff(),
        datetime.now(UTC),
    )
    assert any("judging job groups in child process" in r.getMessage() for r in caplog.records)
    assert report.idle_jobs == 3 and report.booted >= 1, report.summary()
