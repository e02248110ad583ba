"""The cron cycle again, on an EC2 cloud (moto) whose instances the VM player plays."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import read_signing_key
from csctl.engine.cycle import run_cycle
from csctl.plan.backoff import Backoff
from csctl.pool.htcondor import HTCondorPool
from testbed.fixtures_moto import grant_max_count
from testbed.vm_player import ec2_vms
from tests.conftest import testbed_config_text as config_text

pytestmark = pytest.mark.pool


def test_cycles_on_ec2_boot_join_run_and_retire(clean_queue, condor_pool, ec2, vm_player, tmp_path):
    config = parse_config(
        config_text(condor_pool)
        .replace(
            f'state_dir = "{condor_pool.root}/var/lib/csctl-test-state"', f'state_dir = "{tmp_path}/state"'
        )
        .replace("[vm_types.small]", "[vm_types.cloudvm]")
        .replace(
            'images = { local = "host" }',
            f'images = {{ hermes = "{ec2.image_id()}" }}\nflavors = {{ hermes = "t3.micro" }}',
        )
        + f'\n[clouds.hermes]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\nmax_vms = 2\n'
    )
    key = read_signing_key(config.pool.signing_key)
    hermes = make_cloud("hermes", config.clouds["hermes"])
    grant_max_count(hermes.client)  # type: ignore[attr-defined]
    clouds = {"hermes": hermes}
    cluster = clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "2",
            "requirements": 'VMType =?= "cloudvm"',
            "should_transfer_files": "NO",
        },
        count=4,
    )
    schedd = clean_queue.schedd()
    booted = terminated = 0
    history = []  # each cycle's summary, for the failure message
    deadline = time.monotonic() + 180
    while True:
        report, _, _, _ = run_cycle(
            config, HTCondorPool(config.pool), clouds, key, Backoff(), datetime.now(UTC)
        )
        assert not report.errors, report.errors
        history.append(f"{report.summary()} {report.vms}")
        booted += report.booted
        terminated += report.terminated
        vm_player.sync(ec2_vms(ec2.client()))
        if not schedd.query("true", ["ClusterId"]) and not hermes.list_instances(config.pool.name):
            break
        assert time.monotonic() < deadline, report
        schedd.reschedule()
        time.sleep(2)
    done = schedd.history(f"ClusterId == {cluster}", ["JobStatus", "NumJobStarts", "LastRemoteHost"], match=4)
    cycles = "\n".join(history)
    assert [(j["JobStatus"], j["NumJobStarts"]) for j in done] == [(4, 1)] * 4, cycles
    # two 2-core VMs for four 1-core jobs, both retired
    assert (booted, terminated) == (2, 2), cycles
    assert all(j["LastRemoteHost"].split("@")[1].startswith("hermes-") for j in done)
    assert vm_player.played == {}
