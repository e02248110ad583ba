"""Live quotas: the snapshot reads each cloud's quota once, and placement never asks for more.

Against a real Nova (testbed/nova) whose project quota is set through its own API, and
moto's EC2 (whose account attribute ``max-instances`` is the limit it reports).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import SigningKey
from csctl.engine.boot import execute_boot
from csctl.engine.snapshot import take_snapshot
from csctl.model import Quota
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import plan_boot
from testbed.fixtures_moto import grant_max_count

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
KEY = SigningKey("POOL", os.urandom(32))


def two_owners(vms: int, cloud: str) -> Demand:
    owners = {"alice": vms - vms // 2, "bob": vms // 2}
    req = VMRequirement("t", [cloud], idle_jobs=vms, vms_needed=vms, need_by_owner=owners)
    return Demand([req], [], vms)


# -- Nova ------------------------------------------------------------------------------


@pytest.fixture
def nova_cloud(nova_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A config with one OpenStack cloud ``hermes`` (max_vms 10) on a fresh Nova project."""
    pytest.importorskip("openstack")
    for var in [v for v in os.environ if v.startswith("OS_")]:
        monkeypatch.delenv(var)
    project = nova_api.new_project()
    entry = {"auth_type": "none", "compute_endpoint_override": nova_api.endpoint_for(project)}
    (tmp_path / "clouds.yaml").write_text(json.dumps({"clouds": {"testbed": entry}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    admin = nova_api.connect(admin=True)
    flavor = admin.compute.create_flavor(name=f"csctl.quota-{uuid.uuid4().hex[:8]}", ram=64, vcpus=1, disk=1)
    config = parse_config(
        '[pool]\nname = "p"\ncollector = "127.0.0.1"\n'
        f'[clouds.hermes]\ndriver = "openstack"\ncloud = "testbed"\nnetwork = "{nova_api.network_id}"\n'
        "max_vms = 10\n[policy]\nmax_new_vms_per_cycle = 100\n"
        f'[vm_types.t]\ncpus = 1\nmemory = 64\ndisk = 1\nimages = {{ hermes = "{nova_api.image_id}" }}\n'
        f'flavors = {{ hermes = "{flavor.id}" }}\n'
    )
    yield config, project
    project_admin = nova_api.connect(project, admin=True)
    for server in project_admin.compute.servers():
        project_admin.compute.delete_server(server, ignore_missing=True)
    admin.compute.delete_flavor(flavor)


@pytest.mark.nova
@pytest.mark.filterwarnings("ignore::DeprecationWarning:openstack")
def test_nova_project_quota_bounds_the_plan_and_the_boot(nova_api: Any, nova_cloud: tuple[Any, str]) -> None:
    config, project = nova_cloud
    nova_api.set_quota(project, instances=3, cores=-1, ram=-1)
    clouds = {"hermes": make_cloud("hermes", config.clouds["hermes"])}

    snapshot = take_snapshot(None, clouds, config)
    assert snapshot.quotas == {"hermes": Quota(instances=3, cores=None, memory_mb=None)}
    plan = plan_boot(two_owners(8, "hermes"), snapshot.instances, config, quotas=snapshot.quotas)
    # max_vms allows 10; the project's quota 3, split fairly between the two owners
    assert [(i.count, i.owners) for i in plan.items] == [(3, {"alice": 2, "bob": 1})]
    assert plan.unplaced[0].reason == "hermes's quota is used up (left: 0 VMs)"

    report = execute_boot(plan, clouds, config, KEY, NOW, Backoff())
    assert [(o.asked, len(o.started), o.calls, o.error) for o in report.outcomes] == [(3, 3, 1, None)]

    deadline = time.monotonic() + 30
    while (after := take_snapshot(None, clouds, config)).quotas["hermes"].instances != 0:
        assert time.monotonic() < deadline, after.quotas
        time.sleep(0.2)
    again = plan_boot(two_owners(8, "hermes"), after.instances, config, quotas=after.quotas)
    assert again.total == 0 and again.unplaced[0].count == 8


@pytest.mark.nova
@pytest.mark.filterwarnings("ignore::DeprecationWarning:openstack")
def test_nova_limits_that_cannot_be_read_leave_the_configured_limits(
    nova_api: Any, nova_cloud: tuple[Any, str]
) -> None:
    from tests.clouds.test_openstack import inject  # Nova cannot be made to fail /limits itself

    config, project = nova_cloud
    nova_api.set_quota(project, instances=1, cores=-1, ram=-1)  # unseen: the call fails
    cloud = make_cloud("hermes", config.clouds["hermes"])
    inject(cloud, "GET", "/limits", 500, "boom")  # type: ignore[arg-type]
    snapshot = take_snapshot(None, {"hermes": cloud}, config)
    assert snapshot.failed_clouds == set() and snapshot.errors == []  # listed all the same
    error = snapshot.quotas["hermes"].error
    assert error is not None and error.startswith("cloud hermes: get limits failed: 500")
    plan = plan_boot(two_owners(12, "hermes"), snapshot.instances, config, quotas=snapshot.quotas)
    assert plan.total == 10  # max_vms alone
    assert plan.notes == [f"cloud hermes: quota unknown ({error}); placed within its configured limits only"]
    assert (
        plan.unplaced[0].reason == f"hermes is at its limits (quota unknown: {error}; configured limits only)"
    )


# -- EC2 (moto) ------------------------------------------------------------------------


def test_ec2_max_instances_bounds_the_plan(ec2: Any) -> None:
    config = parse_config(
        '[pool]\nname = "p"\ncollector = "127.0.0.1"\n[policy]\nmax_new_vms_per_cycle = 1000\n'
        f'[clouds.aws]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\nmax_attempts = 1\nmax_vms = 1000\n'
        f'[vm_types.t]\ncpus = 1\nmemory = 500\ndisk = 8\nimages = {{ aws = "{ec2.image_id()}" }}\n'
        'flavors = { aws = "t3.micro" }\n'
    )
    cloud = make_cloud("aws", config.clouds["aws"])
    grant_max_count(cloud.client)  # type: ignore[attr-defined]
    snapshot = take_snapshot(None, {"aws": cloud}, config)
    limit = snapshot.quotas["aws"].instances
    assert limit is not None and 0 < limit < 1000  # moto reports the account's max-instances
    plan = plan_boot(two_owners(1000, "aws"), snapshot.instances, config, quotas=snapshot.quotas)
    assert plan.total == limit
    assert plan.unplaced[0].reason == "aws's quota is used up (left: 0 VMs)"
    assert sum(plan.items[0].owners.values()) == limit
