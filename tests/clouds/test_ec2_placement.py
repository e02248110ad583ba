"""The EC2 driver's placement of a boot: the root volume sized to the VM type's disk,
several subnets or zones, images registered for a job's image URL, and the spot price
reported with a bid below it. Against moto's server; errors moto cannot produce are
injected on the wire (``before-send``), as in test_ec2.py."""

from __future__ import annotations

from typing import Any

import pytest

from csctl.clouds.ec2 import Driver, Settings
from csctl.config import parse_config
from csctl.errors import CloudPriceError, ConfigError
from csctl.model import TAG_SOURCE_URL
from testbed.fixtures_moto import EC2Server
from tests.clouds.test_ec2 import Calls, inject, make_driver, make_request, raw_instances
from tests.clouds.test_ec2 import driver as driver  # the fixture

URL = "http://images.example.org/cernvm/ucernvm-prod.1.18-2.cernvm.x86_64.hdd"


def root_volume_size(ec2: EC2Server, raw: dict[str, Any]) -> int:
    """The size in GB of the volume attached at the instance's root device."""
    (volume,) = ec2.client().describe_volumes(
        Filters=[
            {"Name": "attachment.instance-id", "Values": [raw["InstanceId"]]},
            {"Name": "attachment.device", "Values": [raw["RootDeviceName"]]},
        ]
    )["Volumes"]
    return int(volume["Size"])


def image_root(ec2: EC2Server) -> tuple[str, int]:
    (image,) = ec2.client().describe_images(ImageIds=[ec2.image_id()])["Images"]
    (root,) = [m for m in image["BlockDeviceMappings"] if m["DeviceName"] == image["RootDeviceName"]]
    return image["RootDeviceName"], root["Ebs"]["VolumeSize"]


# -- root volume -------------------------------------------------------------------


def test_the_root_volume_is_sized_to_the_vm_types_disk(ec2: EC2Server, driver: Driver) -> None:
    device, snapshot_gb = image_root(ec2)
    calls = Calls(driver)

    driver.boot(make_request(ec2, count=2, disk_gb=snapshot_gb + 25))

    (mapping,) = calls.params["RunInstances"]["BlockDeviceMappings"]
    assert mapping == {
        "DeviceName": device,
        "Ebs": {"VolumeSize": snapshot_gb + 25, "DeleteOnTermination": True},
    }
    assert [root_volume_size(ec2, raw) for raw in raw_instances(ec2)] == [snapshot_gb + 25] * 2


def test_the_image_is_described_once_per_image(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)
    driver.boot(make_request(ec2, batch="hermes-00000001", count=1, disk_gb=40))
    driver.boot(make_request(ec2, batch="hermes-00000002", count=1, disk_gb=40))
    assert calls.ops.count("DescribeImages") == 1


def test_a_disk_smaller_than_the_image_keeps_the_images_size(ec2: EC2Server, driver: Driver) -> None:
    # EC2 refuses a root volume smaller than the image's snapshot
    _, snapshot_gb = image_root(ec2)
    driver.boot(make_request(ec2, count=1, disk_gb=1))
    (raw,) = raw_instances(ec2)
    assert root_volume_size(ec2, raw) == snapshot_gb


def test_a_cloud_may_keep_the_images_own_root_size(ec2: EC2Server) -> None:
    driver = make_driver(ec2, root_volume=False)
    calls = Calls(driver)
    driver.boot(make_request(ec2, count=1, disk_gb=40))
    assert "BlockDeviceMappings" not in calls.params["RunInstances"]
    assert "DescribeImages" not in calls.ops


def test_a_cloud_without_describe_images_boots_with_the_images_size(ec2: EC2Server, driver: Driver) -> None:
    inject(driver, "DescribeImages", "InvalidAction", "not implemented here")
    calls = Calls(driver)
    assert len(driver.boot(make_request(ec2, count=1, disk_gb=40))) == 1
    assert "BlockDeviceMappings" not in calls.params["RunInstances"]


# -- subnets and zones --------------------------------------------------------------


def subnets(ec2: EC2Server, n: int) -> list[str]:
    client = ec2.client()
    vpc = client.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    return [
        client.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24")["Subnet"]["SubnetId"] for i in range(n)
    ]


def test_a_boot_goes_to_the_subnet_it_names(ec2: EC2Server) -> None:
    first, second = subnets(ec2, 2)
    driver = make_driver(ec2, subnets=[first, second])
    assert driver.zones == (first, second)

    driver.boot(make_request(ec2, count=2, zone=second))

    assert {raw["SubnetId"] for raw in raw_instances(ec2)} == {second}


def test_a_boot_goes_to_the_zone_it_names(ec2: EC2Server) -> None:
    driver = make_driver(ec2, availability_zones=["us-east-1b", "us-east-1c"])
    assert driver.zones == ("us-east-1b", "us-east-1c")
    calls = Calls(driver)

    driver.boot(make_request(ec2, count=1, zone="us-east-1c"))

    assert calls.params["RunInstances"]["Placement"] == {"AvailabilityZone": "us-east-1c"}
    (raw,) = raw_instances(ec2)
    assert raw["Placement"]["AvailabilityZone"] == "us-east-1c"


def test_a_cloud_without_zones_lets_ec2_choose(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)
    driver.boot(make_request(ec2, count=1))
    assert driver.zones == ()
    assert "Placement" not in calls.params["RunInstances"] and "SubnetId" not in calls.params["RunInstances"]


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ('subnet_id = "subnet-1"\nsubnets = ["subnet-2"]', "subnet_id and subnets"),
        ('subnets = ["subnet-2"]\navailability_zones = ["us-east-1a"]', "subnets and availability_zones"),
    ],
)
def test_subnets_and_zones_exclude_each_other(keys: str, named: str) -> None:
    text = f'[pool]\nname = "p"\ncollector = "cm"\n[clouds.hermes]\ndriver = "ec2"\nregion = "r"\n{keys}\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    first, second = named.split(" and ")
    assert err.value.problems == [
        f"csctl.toml: clouds.hermes.{second}: {first} is set too: give only one of subnet_id, subnets "
        "and availability_zones, got array"
    ]


def test_repeated_zones_are_tried_once() -> None:
    settings = Settings(region="r", availability_zones=["a", "b", "a"])
    assert settings.zones == ("a", "b")


# -- images registered for a URL ----------------------------------------------------


def register(ec2: EC2Server, name: str, tags: dict[str, str] | None = None) -> str:
    client = ec2.client()
    reservation = client.run_instances(
        ImageId=ec2.image_id(), MinCount=1, MaxCount=1, InstanceType="t3.micro"
    )
    instance = reservation["Instances"][0]["InstanceId"]
    image = str(client.create_image(InstanceId=instance, Name=name)["ImageId"])
    if tags:
        client.create_tags(Resources=[image], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    client.terminate_instances(InstanceIds=[instance])
    return image


def test_an_image_named_by_its_url_is_found(ec2: EC2Server, driver: Driver) -> None:
    image = register(ec2, URL)
    assert driver.find_image(URL) == image


def test_an_image_tagged_with_the_url_is_found(ec2: EC2Server, driver: Driver) -> None:
    image = register(ec2, "cernvm-4", {TAG_SOURCE_URL: URL})
    register(ec2, "cernvm-3", {TAG_SOURCE_URL: URL + ".old"})
    calls = Calls(driver)
    assert driver.find_image(URL) == image
    assert calls.ops == ["DescribeImages", "DescribeImages"]  # by name, then by tag


def test_no_image_for_an_unregistered_url(ec2: EC2Server, driver: Driver) -> None:
    assert driver.find_image(URL) is None


# -- spot price ---------------------------------------------------------------------


def test_a_bid_below_the_spot_price_reports_the_price(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=1)
    inject(driver, "RunInstances", "SpotMaxPriceTooLow", "Your Spot request price is lower than the minimum")
    history = ec2.client().describe_spot_price_history(InstanceTypes=["t3.micro"])["SpotPriceHistory"]
    lowest = min(float(h["SpotPrice"]) for h in history)

    with pytest.raises(CloudPriceError) as err:
        driver.boot(make_request(ec2, max_price=0.000001))

    assert err.value.price == lowest
    assert err.value.message == (
        "cloud hermes: RunInstances failed: SpotMaxPriceTooLow: Your Spot request price is lower than "
        f"the minimum; spot price now {lowest:g} (bid 1e-06)"
    )
    assert err.value.hint == "raise the jobs' VMMaximumPrice (or the cloud's max_price) above the spot price"


def test_the_price_error_stands_when_the_price_cannot_be_read(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=1)
    inject(driver, "RunInstances", "SpotMaxPriceTooLow", "too low")
    inject(driver, "DescribeSpotPriceHistory", "UnauthorizedOperation", "no")

    with pytest.raises(CloudPriceError) as err:
        driver.boot(make_request(ec2, max_price=0.01))

    assert err.value.price is None
    assert err.value.message == "cloud hermes: RunInstances failed: SpotMaxPriceTooLow: too low"
