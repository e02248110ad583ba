"""EC2's survey: a snapshot's instances and quota from one DescribeInstances, against moto's
EC2 and a Service Quotas API on loopback.

The account holds more than csctl's pool on this cloud: another pool's VMs, another
cloud's (same account and region), someone else's untagged instance, stopped and
terminated ones. The survey must pick exactly what ``list_instances`` lists and count
exactly what ``quota`` counts. Requests are counted with botocore's ``before-send`` hook
(``Calls``): pages and retries each count.
"""

from __future__ import annotations

from typing import Any

import pytest

from csctl.clouds.ec2 import Driver
from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.engine.snapshot import take_snapshot
from csctl.errors import CloudError
from csctl.model import TAG_CLOUD, TAG_POOL, Instance, Quota
from csctl.model.survey import Surveyor
from testbed.fixtures_moto import EC2Server, grant_max_count
from testbed.fixtures_quotas import ServiceQuotasServer
from tests.clouds.test_ec2 import CLOUD, POOL, Calls, inject, make_driver, make_request
from tests.clouds.test_ec2_vcpus import STANDARD, cloud_toml, left, quota_driver

STANDARD_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"


def crowd(ec2: EC2Server, driver: Driver) -> None:
    """The pool's VMs on this cloud (one stopped, one terminated) among the account's others."""
    ours = driver.boot(make_request(ec2, count=3, flavor="m5.large"))
    ec2.client().stop_instances(InstanceIds=[ours[0].provider_id])
    gone = driver.boot(make_request(ec2, batch="hermes-0000dead", count=1))
    ec2.client().terminate_instances(InstanceIds=[gone[0].provider_id])
    driver.boot(make_request(ec2, batch="hermes-00000b0b", count=2, pool="pool-b"))
    other = Driver("hermes-2", driver.settings)
    grant_max_count(other.client)
    tags = {TAG_POOL: POOL, TAG_CLOUD: "hermes-2"}
    other.boot(make_request(ec2, batch="hermes-2-0000000c", count=1, tags=tags))
    # someone else's, untagged; and one of theirs stopped, which no quota counts
    run = {"ImageId": ec2.image_id(), "InstanceType": "t3.micro", "MinCount": 2, "MaxCount": 2}
    theirs = ec2.client().run_instances(**run)["Instances"]
    ec2.client().stop_instances(InstanceIds=[theirs[0]["InstanceId"]])


def by_id(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda vm: vm.csctl_id)


def test_the_survey_is_the_list_and_the_quota_from_one_describe_instances(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.set_vcpus(STANDARD, STANDARD_NAME, 64)
    driver = quota_driver(ec2, service_quotas)
    crowd(ec2, driver)
    assert isinstance(driver, Surveyor)
    calls = Calls(driver)

    instances, quota = driver.survey(POOL)

    assert calls.ops.count("DescribeInstances") == 1
    assert calls.params["DescribeInstances"]["Filters"] == [
        {
            "Name": "instance-state-name",
            "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
        }
    ]
    assert by_id(instances) == by_id(driver.list_instances(POOL))
    assert len(instances) == 3 and {vm.cloud for vm in instances} == {CLOUD}
    assert quota == driver.quota()
    # running: our 2 m5.large, pool-b's 2 and hermes-2's 1 t3.micro, someone else's 1 t3.micro
    assert quota.instances == 20 - 6
    assert left(quota) == {STANDARD: 64 - 2 * 2 - 4 * 2}


def test_an_ec2_compatible_cloud_with_max_instances_surveys_in_one_call(ec2: EC2Server) -> None:
    driver = make_driver(ec2)  # no Service Quotas: max-instances alone counts the account
    crowd(ec2, driver)
    calls = Calls(driver)

    instances, quota = driver.survey(POOL)

    assert calls.ops == ["DescribeAccountAttributes", "DescribeInstances"]
    assert by_id(instances) == by_id(driver.list_instances(POOL))
    assert quota == driver.quota() == Quota(instances=20 - 6)


def test_a_quota_without_instances_to_count_surveys_the_pool_alone(ec2: EC2Server) -> None:
    driver = make_driver(ec2)
    crowd(ec2, driver)
    inject(driver, "DescribeAccountAttributes", "InvalidAction", "not implemented here")
    calls = Calls(driver)

    instances, quota = driver.survey(POOL)

    assert quota == Quota()
    assert calls.ops == ["DescribeAccountAttributes", "DescribeInstances"]
    filters = {f["Name"]: f["Values"] for f in calls.params["DescribeInstances"]["Filters"]}
    assert filters[f"tag:{TAG_POOL}"] == [POOL] and filters[f"tag:{TAG_CLOUD}"] == [CLOUD]
    assert by_id(instances) == by_id(driver.list_instances(POOL))


def test_a_refused_service_quotas_call_leaves_the_list(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.error = "AccessDeniedException"
    driver = quota_driver(ec2, service_quotas)
    crowd(ec2, driver)

    instances, quota = driver.survey(POOL)

    assert by_id(instances) == by_id(driver.list_instances(POOL)) and len(instances) == 3
    with pytest.raises(CloudError) as caught:
        driver.quota()
    assert quota == Quota(error=caught.value.message)


def test_a_refused_max_instances_call_leaves_the_list(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=1)
    crowd(ec2, driver)
    inject(driver, "DescribeAccountAttributes", "UnauthorizedOperation")

    instances, quota = driver.survey(POOL)

    assert len(instances) == 3
    assert quota.error == (
        "cloud hermes: DescribeAccountAttributes failed: UnauthorizedOperation: injected by the test"
    )


def snapshot_config(ec2: EC2Server, service_quotas: ServiceQuotasServer) -> Any:
    extra = f'service_quotas_endpoint_url = "{service_quotas.endpoint}"\n'
    return parse_config(cloud_toml(ec2, extra).replace('name = "p"', f'name = "{POOL}"'))


def test_a_snapshot_asks_an_ec2_cloud_one_describe_instances(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.set_vcpus(STANDARD, STANDARD_NAME, 64)
    config = snapshot_config(ec2, service_quotas)
    cloud = make_cloud("aws", config.clouds["aws"])
    assert isinstance(cloud, Driver)
    grant_max_count(cloud.client)
    cloud.boot(make_request(ec2, batch="aws-0000000a", count=2, tags={TAG_POOL: POOL, TAG_CLOUD: "aws"}))
    crowd(ec2, make_driver(ec2))
    calls = Calls(cloud)

    snapshot = take_snapshot(None, {"aws": cloud}, config)

    assert calls.ops.count("DescribeInstances") == 1
    assert sorted(vm.csctl_id for vm in snapshot.instances) == ["aws-0000000a-0", "aws-0000000a-1"]
    assert snapshot.errors == [] and snapshot.quotas["aws"] == cloud.quota()
    assert snapshot.quotas["aws"].instances == 20 - 8


def test_a_listing_that_fails_fails_the_quota_too(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    config = snapshot_config(ec2, service_quotas)
    cloud = make_cloud("aws", config.clouds["aws"])
    assert isinstance(cloud, Driver)
    inject(cloud, "DescribeInstances", "RequestLimitExceeded", "slow down")
    with pytest.raises(CloudError) as caught:
        cloud.survey(POOL)
    message = "cloud aws: DescribeInstances failed: RequestLimitExceeded: slow down"
    assert caught.value.message == message

    snapshot = take_snapshot(None, {"aws": cloud}, config)

    assert snapshot.errors == [message] and snapshot.failed_clouds == {"aws"}
    assert snapshot.quotas == {"aws": Quota(error=message)}
