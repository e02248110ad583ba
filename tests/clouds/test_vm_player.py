"""csctl's payload, delivered through a real cloud API, makes a VM join the pool.

csctl boots on moto (EC2) or Nova, which boot no OS; the VM player (testbed/vm_player.py)
reads each instance's user-data and launch index back from the API and plays the VM
with the local driver's ``start_vm`` in the pool's chroot.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from csctl.clouds.ec2 import USER_DATA_LIMIT
from csctl.clouds.registry import make_cloud
from csctl.config import Config, parse_config
from csctl.context.payload import GZIP_MAGIC
from csctl.context.render import encode_user_data, vm_identity
from csctl.context.tokens import STARTD_SCOPES, SigningKey, mint, read_signing_key
from csctl.engine.boot import boot_request, execute_boot, new_batch_id
from csctl.plan.backoff import Backoff
from csctl.plan.placement import BootItem, BootPlan
from testbed.fixtures_moto import EC2Server, grant_max_count
from testbed.vm_player import VMPlayer, ec2_vms, nova_vms
from tests.conftest import testbed_config_text as config_text  # not test_*: pytest would collect it

pytestmark = pytest.mark.pool

EC2_CLOUD = "hermes"
NOVA_CLOUD = "fghotel"
VM_TYPE = "cloudvm"
JOIN_WAIT = 30  # seconds; a played startd's ad appears ~3 s after its master starts
NO_JOIN_WAIT = 8  # seconds to be sure a broken VM does not join


def cloud_config(
    condor_pool: Any, ec2: EC2Server | None = None, nova_image: str | None = None, nova_network: str = ""
) -> Config:
    """The test-bed configuration plus an ec2 cloud on moto and/or an openstack cloud."""
    images, extra = {}, ""
    if ec2 is not None:
        images[EC2_CLOUD] = ec2.image_id()
        extra += (
            f'[clouds.{EC2_CLOUD}]\ndriver = "ec2"\nregion = "{ec2.region}"\n'
            f'profile = "{ec2.profile}"\nendpoint_url = "{ec2.endpoint}"\n'
        )
    if nova_image is not None:
        images[NOVA_CLOUD] = nova_image
        extra += f'[clouds.{NOVA_CLOUD}]\ndriver = "openstack"\ncloud = "testbed"\n'
        extra += f'network = "{nova_network}"\n'
    image_table = ", ".join(f'{cloud} = "{image}"' for cloud, image in images.items())
    extra += f"[vm_types.{VM_TYPE}]\ncpus = 1\nmemory = 1000\ndisk = 10\nimages = {{ {image_table} }}\n"
    return parse_config(config_text(condor_pool, extra=extra))


def ec2_driver(config: Config) -> Any:
    driver = make_cloud(EC2_CLOUD, config.clouds[EC2_CLOUD])
    grant_max_count(driver.client)  # moto grants whole batches, as AWS with capacity does
    return driver


def boot(config: Config, cloud: Any, item: BootItem) -> str:
    """csctl's boot path for one plan item; returns the batch id."""
    key = read_signing_key(config.pool.signing_key)
    report = execute_boot(
        BootPlan([item], []), {item.cloud: cloud}, config, key, datetime.now(UTC), Backoff()
    )
    (outcome,) = report.outcomes
    assert outcome.error is None, outcome.error
    assert len(outcome.started) == item.count
    batch = outcome.started[0].rsplit("-", 1)[0]
    assert sorted(outcome.started) == [f"{batch}-{i}" for i in range(item.count)]
    return batch


def assert_joined(config: Config, player: VMPlayer, batch: str, cloud: str, count: int) -> None:
    report = player.wait_joined(JOIN_WAIT)
    assert report.ok, "\n\n".join(f"{f.csctl_id}: {f.reason}\n{f.console}" for f in report.failures)
    assert sorted(report.joined) == [f"{batch}-{i}" for i in range(count)]
    for ad in report.joined.values():
        assert ad["AuthenticatedIdentity"] == vm_identity(config, batch)
        assert (ad["CsctlCloud"], ad["CsctlBatch"], ad["VMType"]) == (cloud, batch, VM_TYPE)


def run_job(condor_pool: Any, batch: str) -> None:
    """A job asking for the VM type runs to completion on one of the batch's VMs."""
    cluster = condor_pool.submit(
        {"executable": "/bin/true", "requirements": f'VMType =?= "{VM_TYPE}"', "should_transfer_files": "NO"}
    )
    schedd = condor_pool.schedd()
    deadline = time.monotonic() + 60
    while schedd.query(f"ClusterId == {cluster}", ["JobStatus"]):
        assert time.monotonic() < deadline, "the job did not run on a played VM"
        schedd.reschedule()
        time.sleep(1)
    (done,) = schedd.history(f"ClusterId == {cluster}", ["JobStatus", "LastRemoteHost"], match=1)
    assert done["JobStatus"] == 4 and batch in done["LastRemoteHost"]


# -- EC2 (moto) ------------------------------------------------------------------------


def test_ec2_batch_joins_and_runs_a_job(ec2: EC2Server, vm_player: VMPlayer, clean_queue: Any) -> None:
    config = cloud_config(clean_queue, ec2=ec2)
    batch = boot(config, ec2_driver(config), BootItem(EC2_CLOUD, VM_TYPE, 2, ec2.image_id(), "t3.micro"))

    played = vm_player.play(ec2_vms(ec2.client()))

    assert sorted(vm.csctl_id for vm in played) == [f"{batch}-0", f"{batch}-1"]
    assert vm_player.play(ec2_vms(ec2.client())) == []  # each instance is played once
    assert_joined(config, vm_player, batch, EC2_CLOUD, 2)
    run_job(clean_queue, batch)


def broken(user_data: bytes, case: str, config: Config, batch: str) -> bytes:
    """The batch's payload with its setup script failing, or carrying a wrong-key token
    (read through gzip when the payload was compressed to fit EC2's limit, and encoded
    again the same way)."""
    if user_data.startswith(GZIP_MAGIC):
        user_data = gzip.decompress(user_data)
    doc = yaml.safe_load(user_data)
    for entry in doc["write_files"]:
        if case == "setup exits 1" and entry["path"].endswith("/csctl-vm-setup"):
            entry["content"] = "#!/bin/sh\necho 'csctl-vm-setup: no network' >&2\nexit 1\n"
        elif case == "wrong-key token" and "/tokens.d/" in entry["path"]:
            claims = {"issuer": config.pool.name, "subject": vm_identity(config, batch)}
            token = mint(
                SigningKey("POOL", b"not the pool's key"),
                **claims,
                scopes=STARTD_SCOPES,
                now=datetime.now(UTC),
                lifetime_seconds=3600,
            )
            entry["content"] = token + "\n"
    return encode_user_data("#cloud-config\n" + yaml.safe_dump(doc), USER_DATA_LIMIT)


def test_vms_that_never_join_are_reported_with_their_console(
    ec2: EC2Server, vm_player: VMPlayer, condor_pool: Any
) -> None:
    config = cloud_config(condor_pool, ec2=ec2)
    driver = ec2_driver(config)
    key = read_signing_key(config.pool.signing_key)
    item = BootItem(EC2_CLOUD, VM_TYPE, 1, ec2.image_id(), "t3.micro")
    batches = {}
    for case in ("setup exits 1", "wrong-key token"):  # both in one wait for the collector
        batch = new_batch_id(EC2_CLOUD)
        request = boot_request(config, driver, item, key, datetime.now(UTC), batch, 1)
        driver.boot(replace(request, user_data=broken(request.user_data, case, config, batch)))
        batches[case] = batch

    played = vm_player.play(ec2_vms(ec2.client()))
    report = vm_player.wait_joined(NO_JOIN_WAIT)

    assert report.joined == {}
    failures = {f.csctl_id: f for f in report.failures}
    assert sorted(failures) == sorted(f"{batch}-0" for batch in batches.values())
    # csctl's local driver either refuses a VM whose setup fails or leaves it up, never
    # joining (as a cloud VM whose contextualization fails): either way its console says why.
    setup_failed = failures[f"{batches['setup exits 1']}-0"]
    assert "==> setup.log <==\ncsctl-vm-setup: no network" in setup_failed.console
    token_refused = failures[f"{batches['wrong-key token']}-0"]
    assert token_refused.csctl_id in [vm.csctl_id for vm in played]
    assert token_refused.reason == f"no startd ad in {config.pool.collector} after {NO_JOIN_WAIT} s"
    assert "==> log/StartLog <==" in token_refused.console
    assert "Failed to authenticate using IDTOKENS" in token_refused.console


# -- Nova ------------------------------------------------------------------------------


@pytest.fixture
def nova_cloud(nova_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A fresh project as clouds.yaml entry ``testbed`` (member), its admin connection, a flavor."""
    for var in [v for v in os.environ if v.startswith("OS_")]:
        monkeypatch.delenv(var)
    project = nova_api.new_project()
    entry = {"auth_type": "none", "compute_endpoint_override": nova_api.endpoint_for(project)}
    (tmp_path / "clouds.yaml").write_text(json.dumps({"clouds": {"testbed": entry}}))  # JSON is YAML
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    admin = nova_api.connect(project, admin=True)
    flavor = admin.compute.create_flavor(name=f"csctl-{project[:8]}", ram=1000, vcpus=1, disk=10)
    yield {"admin": admin, "flavor": flavor.id}
    for server in admin.compute.servers():
        admin.compute.delete_server(server, ignore_missing=True)
    admin.compute.delete_flavor(flavor)


@pytest.mark.nova
def test_nova_batch_joins_and_runs_a_job(
    nova_api: Any, nova_cloud: dict[str, Any], vm_player: VMPlayer, clean_queue: Any
) -> None:
    config = cloud_config(clean_queue, nova_image=nova_api.image_id, nova_network=nova_api.network_id)
    driver = make_cloud(NOVA_CLOUD, config.clouds[NOVA_CLOUD])
    item = BootItem(NOVA_CLOUD, VM_TYPE, 2, nova_api.image_id, nova_cloud["flavor"])
    batch = boot(config, driver, item)
    admin = nova_cloud["admin"]
    for server in admin.compute.servers():
        admin.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=60)

    played = vm_player.play(nova_vms(admin))

    assert sorted(vm.csctl_id for vm in played) == [f"{batch}-0", f"{batch}-1"]
    assert vm_player.play(nova_vms(admin)) == []
    assert_joined(config, vm_player, batch, NOVA_CLOUD, 2)
    run_job(clean_queue, batch)
