"""Booting by what helps after each EC2 error, against moto: the next subnet after a
capacity error (and that subnet skipped for a while), no halving when throttled or
outbid; and jobs' image URLs resolved to the images registered for them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import SigningKey
from csctl.engine.boot import execute_boot, resolve_image_urls
from csctl.engine.state import read_backoff, save_backoff
from csctl.model import TAG_SOURCE_URL
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import BootItem, BootPlan
from csctl.plan.zones import UNAVAILABLE_FOR
from testbed.fixtures_moto import error_response, grant_max_count

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY = SigningKey("POOL", os.urandom(32))
URL = "https://images.example.org/cernvm4.hdd"


class Asked:
    """The (subnet, MaxCount) of every RunInstances the cloud sends; refuses those in
    ``refuse`` with ``code``."""

    def __init__(self, cloud: Any, code: str = "InsufficientInstanceCapacity") -> None:
        self.calls: list[tuple[str, int]] = []
        self.refuse: set[str] = set()
        self.code = code
        cloud.client.meta.events.register("before-send.ec2.RunInstances", self._send)

    def _send(self, request: Any, **_: Any) -> Any:
        body = parse_qs(request.body if isinstance(request.body, str) else request.body.decode())
        subnet = body.get("SubnetId", [""])[0]
        self.calls.append((subnet, int(body["MaxCount"][0])))
        return error_response(self.code, "injected") if subnet in self.refuse or "*" in self.refuse else None


@pytest.fixture
def zoned(ec2: Any) -> tuple[Any, Any, list[str]]:
    client = ec2.client()
    vpc = client.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        client.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24")["Subnet"]["SubnetId"] for i in range(3)
    ]
    config = parse_config(
        '[pool]\nname = "p"\ncollector = "127.0.0.1"\n'
        f'[clouds.z]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\nmax_attempts = 1\nsubnets = {subnets!r}\n'.replace("'", '"')
        + f'[vm_types.t]\ncpus = 2\nmemory = 1000\ndisk = 10\nimages = {{ z = "{ec2.image_id()}" }}\n'
        + 'flavors = { z = "t3.micro" }\n'
    )
    cloud = make_cloud("z", config.clouds["z"])
    grant_max_count(cloud.client)  # type: ignore[attr-defined]
    return config, cloud, subnets


def plan(ec2: Any, count: int, price: float | None = None) -> BootPlan:
    return BootPlan([BootItem("z", "t", count, ec2.image_id(), "t3.micro", price)], [])


def test_capacity_moves_to_the_next_subnet_and_skips_the_full_one_for_a_while(ec2, zoned):
    config, cloud, (a, b, c) = zoned
    asked = Asked(cloud)
    asked.refuse = {a}
    backoff = Backoff()

    (outcome,) = execute_boot(plan(ec2, 3), {"z": cloud}, config, KEY, NOW, backoff).outcomes

    assert asked.calls == [(a, 3), (b, 3)]
    assert (len(outcome.started), outcome.error, outcome.zones_unavailable) == (3, None, [a])
    assert backoff.active(NOW) == {}  # the cloud booted: nothing backed off
    assert backoff.zones.active(NOW) == {f"z/{a}": NOW + UNAVAILABLE_FOR}

    # the next cycle starts with the next subnet; past the skip, the full one is tried again
    asked.calls.clear()
    execute_boot(plan(ec2, 1), {"z": cloud}, config, KEY, NOW + UNAVAILABLE_FOR / 2, backoff)
    assert asked.calls == [(b, 1)]
    asked.calls.clear()
    asked.refuse = set()
    execute_boot(plan(ec2, 1), {"z": cloud}, config, KEY, NOW + UNAVAILABLE_FOR, backoff)
    assert asked.calls == [(a, 1)]


def test_every_subnet_full_then_half_as_many_then_the_cloud_is_backed_off(ec2, zoned):
    config, cloud, (a, b, c) = zoned
    asked = Asked(cloud)
    asked.refuse = {"*"}
    backoff = Backoff()

    (outcome,) = execute_boot(plan(ec2, 2), {"z": cloud}, config, KEY, NOW, backoff).outcomes

    assert asked.calls == [(a, 2), (b, 2), (c, 2), (a, 1), (b, 1), (c, 1)]
    assert (outcome.started, outcome.error_kind, outcome.zones_unavailable) == ([], "capacity", [a, b, c])
    assert set(backoff.active(NOW)) == {"z"}

    # while every subnet is skipped, nothing is asked
    asked.calls.clear()
    (later,) = execute_boot(
        plan(ec2, 2), {"z": cloud}, config, KEY, NOW, Backoff(zones=backoff.zones)
    ).outcomes
    assert asked.calls == []
    assert later.error == "cloud z: every zone ran out of capacity in the last minutes"


def test_throttling_is_not_halved_and_backs_the_cloud_off(ec2, zoned):
    config, cloud, (a, _, _) = zoned
    asked = Asked(cloud, "RequestLimitExceeded")
    asked.refuse = {"*"}
    backoff = Backoff()

    (outcome,) = execute_boot(plan(ec2, 4), {"z": cloud}, config, KEY, NOW, backoff).outcomes

    assert asked.calls == [(a, 4)]
    assert outcome.error_kind == "throttled"
    assert set(backoff.active(NOW)) == {"z"} and backoff.zones.until == {}


def test_a_bid_below_the_spot_price_is_not_halved_nor_backed_off(ec2, zoned):
    config, cloud, (a, _, _) = zoned
    asked = Asked(cloud, "SpotMaxPriceTooLow")
    asked.refuse = {"*"}
    backoff = Backoff()

    (outcome,) = execute_boot(plan(ec2, 4, price=0.001), {"z": cloud}, config, KEY, NOW, backoff).outcomes

    assert asked.calls == [(a, 4)]
    assert outcome.error_kind == "price"
    assert outcome.error is not None and "; spot price now " in outcome.error
    assert backoff.until == {} and backoff.zones.until == {}


def test_skipped_zones_are_kept_with_the_backoff(tmp_path):
    backoff = Backoff()
    now = datetime.now(UTC).replace(microsecond=0)
    backoff.zones.mark("z", "subnet-1", now)
    save_backoff(tmp_path, backoff)
    read, warnings = read_backoff(tmp_path, now)
    assert (read, warnings) == (backoff, [])
    # past the skip, the zone is forgotten when read back
    assert read_backoff(tmp_path, now + UNAVAILABLE_FOR)[0].zones.until == {}


# -- image URLs ----------------------------------------------------------------------


def url_demand() -> Demand:
    requirement = VMRequirement(
        "t", ["z"], idle_jobs=3, vms_needed=2, images={"z": URL}, owners=["alice", "bob"]
    )
    return Demand([requirement], [], 3)


def test_a_url_is_booted_from_the_image_registered_for_it(ec2, zoned):
    config, cloud, _ = zoned
    client = ec2.client()
    vm = client.run_instances(ImageId=ec2.image_id(), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = client.create_image(InstanceId=vm, Name="cernvm-4")["ImageId"]
    client.create_tags(Resources=[image], Tags=[{"Key": TAG_SOURCE_URL, "Value": URL}])

    demand, warnings = resolve_image_urls(url_demand(), {"z": cloud})

    assert warnings == []
    assert [(r.clouds, r.images) for r in demand.requirements] == [(["z"], {"z": image})]


def test_a_url_no_cloud_registered_rejects_its_jobs_and_says_how_to_register(ec2, zoned):
    config, cloud, _ = zoned

    demand, warnings = resolve_image_urls(url_demand(), {"z": cloud})

    assert demand.requirements == []
    (rejected,) = demand.rejected
    assert (rejected.jobs, rejected.owner) == (3, "alice, bob")
    assert rejected.reasons == [
        f"VMLoc: no image registered for {URL} on cloud(s) z: upload it there under that name, or set "
        f"the image property (OpenStack) or tag (EC2) {TAG_SOURCE_URL} to the URL, e.g. openstack image set "
        f"--property {TAG_SOURCE_URL}=URL IMAGE, aws ec2 create-tags --resources AMI --tags "
        f"Key={TAG_SOURCE_URL},Value=URL"
    ]
    assert warnings == [f"3 job(s) of alice, bob rejected: {rejected.reasons[0]}"]


def test_demand_without_urls_asks_no_cloud(ec2, zoned):
    config, cloud, _ = zoned
    demand = Demand(
        [VMRequirement("t", ["z"], idle_jobs=1, vms_needed=1, images={"z": "ami-12345678"})], [], 1
    )
    calls: list[str] = []
    cloud.client.meta.events.register("before-send.ec2.*", lambda event_name, **_: calls.append(event_name))
    assert resolve_image_urls(demand, {"z": cloud}) == (demand, [])
    assert calls == []


def register(ec2: Any, name: str, url: str | None = None) -> str:
    client = ec2.client()
    vm = client.run_instances(ImageId=ec2.image_id(), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = str(client.create_image(InstanceId=vm, Name=name)["ImageId"])
    if url:
        client.create_tags(Resources=[image], Tags=[{"Key": TAG_SOURCE_URL, "Value": url}])
    return image


def test_a_plan_naming_a_url_boots_the_registered_image_looked_up_once(ec2, zoned):
    config, cloud, _ = zoned
    image = register(ec2, URL)
    asked = Asked(cloud)
    sent: list[str] = []
    cloud.client.meta.events.register(
        "before-send.ec2.*", lambda event_name, **_: sent.append(event_name.rsplit(".", 1)[1])
    )
    items = [BootItem("z", "t", 1, URL, "t3.micro"), BootItem("z", "t", 1, URL, "t3.micro", 0.5)]
    report = execute_boot(BootPlan(items, []), {"z": cloud}, config, KEY, NOW, Backoff())
    assert [(len(o.started), o.error, o.image) for o in report.outcomes] == [(1, None, URL)] * 2
    assert len(asked.calls) == 2
    assert {raw["ImageId"] for raw in ec2.client().describe_instances()["Reservations"][-1]["Instances"]} == {
        image
    }
    assert sent.count("DescribeImages") == 2  # by name once; then the image's root device once


def test_a_plan_naming_an_unregistered_url_says_how_to_register_and_backs_the_url_off(ec2, zoned):
    config, cloud, _ = zoned
    asked = Asked(cloud)
    backoff = Backoff()
    plan = BootPlan([BootItem("z", "t", 2, URL, "t3.micro")], [])
    (outcome,) = execute_boot(plan, {"z": cloud}, config, KEY, NOW, backoff).outcomes
    assert asked.calls == [] and outcome.error_kind == "bad-request"
    assert outcome.error is not None
    assert outcome.error.startswith(f"cloud z: no image registered for {URL} on cloud(s) z: upload it there")
    assert set(backoff.active(NOW)) == {f"z/{URL}"}


def test_a_one_slot_vm_is_listed_as_one(ec2, zoned):
    config, cloud, _ = zoned
    items = [BootItem("z", "t", 1, ec2.image_id(), "t3.micro", single_slot=True)]
    items.append(BootItem("z", "t", 1, ec2.image_id(), "t3.micro"))
    execute_boot(BootPlan(items, []), {"z": cloud}, config, KEY, NOW, Backoff())
    listed = cloud.list_instances(config.pool.name)
    assert sorted(vm.single_slot for vm in listed) == [False, True]
