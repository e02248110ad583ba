"""EC2's vCPU limits: read from a Service Quotas API on loopback, the account's instances
counted in moto's EC2, and the plan and the boot bounded by what is left.

moto gives no CpuOptions: the driver falls back to DescribeInstanceTypes for the vCPUs
(m5.xlarge 4, t3.micro 2, m5.large 2), as it does on EC2-compatible clouds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from csctl.clouds.ec2 import Driver
from csctl.clouds.ec2.vcpus import FIX
from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import SigningKey
from csctl.engine.boot import execute_boot
from csctl.engine.snapshot import take_snapshot
from csctl.errors import CloudError, CloudThrottled, ConfigError
from csctl.model import Quota
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import plan_boot
from testbed.fixtures_moto import EC2Server, grant_max_count
from testbed.fixtures_quotas import ServiceQuotasServer
from tests.clouds.test_ec2 import make_driver, make_request

STANDARD, STANDARD_SPOT, G_VT = "L-1216C47A", "L-34B43A08", "L-DB2E81BA"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = SigningKey("POOL", b"a test key, not the pool's")


def left(quota: Quota) -> dict[str, int]:
    return {v.name.split()[0]: v.left for v in quota.vcpus}


def quota_driver(ec2: EC2Server, service_quotas: ServiceQuotasServer, **settings: Any) -> Driver:
    endpoint = service_quotas.endpoint
    return make_driver(ec2, service_quotas_endpoint_url=endpoint, max_attempts=1, **settings)


def test_vcpu_limits_are_the_quotas_minus_the_accounts_vcpus(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.set_vcpus(STANDARD, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", 32)
    service_quotas.set_vcpus(
        STANDARD_SPOT, "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", 16
    )
    service_quotas.set_vcpus(G_VT, "Running On-Demand G and VT instances", 8)
    driver = quota_driver(ec2, service_quotas)
    driver.boot(make_request(ec2, count=3, flavor="m5.xlarge"))  # 12 vCPUs
    driver.boot(make_request(ec2, batch="hermes-5b075b07", count=1, flavor="m5.large", max_price=0.5))
    # not csctl's: the limits are the account's, so its instances count too
    ec2.client().run_instances(ImageId=ec2.image_id(), InstanceType="t3.micro", MinCount=1, MaxCount=1)

    quota = driver.quota()

    assert left(quota) == {STANDARD: 32 - 12 - 2, STANDARD_SPOT: 16 - 2, G_VT: 8}
    assert quota.instances == 20 - 5  # moto's max-instances, as before
    assert quota.vcpu_limit("g4dn.xlarge", spot=True) is None  # no G spot quota listed
    # five quotas listed (two csctl does not read), two to a page
    assert service_quotas.calls == ["ListServiceQuotas"] * 3


def test_an_ec2_compatible_cloud_asks_no_service_quotas(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    driver = make_driver(ec2)  # endpoint_url set, no service_quotas_endpoint_url: not AWS
    driver.boot(make_request(ec2, count=2))
    for _ in range(3):  # every cycle: the same quota, and no error to warn of
        assert driver.quota() == Quota(instances=20 - 2)
    assert service_quotas.calls == []


def test_service_quotas_off_on_aws_too(ec2: EC2Server, service_quotas: ServiceQuotasServer) -> None:
    driver = quota_driver(ec2, service_quotas, vcpu_quotas=False)
    assert driver.quota() == Quota(instances=20)
    assert service_quotas.calls == []


def test_a_refused_service_quotas_call_names_the_fix(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.error = "AccessDeniedException"
    driver = quota_driver(ec2, service_quotas)
    with pytest.raises(CloudError) as caught:
        driver.quota()
    assert caught.value.message == (
        "cloud hermes: Service Quotas ListServiceQuotas failed: AccessDeniedException: User is not "
        f"authorized to perform: servicequotas:ListServiceQuotas ({FIX})"
    )


def test_a_throttled_service_quotas_call_is_a_throttle(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.error = "TooManyRequestsException"
    with pytest.raises(CloudThrottled, match="ListServiceQuotas failed: TooManyRequestsException"):
        quota_driver(ec2, service_quotas).quota()


def test_vcpu_quotas_on_an_ec2_compatible_cloud_need_its_service_quotas_endpoint(ec2: EC2Server) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(cloud_toml(ec2, "vcpu_quotas = true\n"))
    assert "clouds.aws" in str(caught.value.problems)
    assert "needs service_quotas_endpoint_url" in str(caught.value.problems)


# -- the snapshot, the plan and the boot -------------------------------------------------


def cloud_toml(ec2: EC2Server, extra: str) -> str:
    return (
        '[pool]\nname = "p"\ncollector = "127.0.0.1"\n[policy]\nmax_new_vms_per_cycle = 100\n'
        f'[clouds.aws]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\nmax_attempts = 1\nmax_vms = 100\n{extra}'
        f'[vm_types.t]\ncpus = 4\nmemory = 500\ndisk = 8\nimages = {{ aws = "{ec2.image_id()}" }}\n'
        'flavors = { aws = "m5.xlarge" }\n'
    )


def need(vms: int) -> Demand:
    return Demand([VMRequirement("t", ["aws"], idle_jobs=vms, vms_needed=vms)], [], vms)


def test_the_standard_vcpu_limit_bounds_the_plan_and_the_boot(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.set_vcpus(STANDARD, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", 20)
    ec2.client().run_instances(ImageId=ec2.image_id(), InstanceType="m5.large", MinCount=1, MaxCount=1)
    config = parse_config(cloud_toml(ec2, f'service_quotas_endpoint_url = "{service_quotas.endpoint}"\n'))
    clouds = {"aws": make_cloud("aws", config.clouds["aws"])}
    grant_max_count(clouds["aws"].client)  # type: ignore[attr-defined]

    snapshot = take_snapshot(None, clouds, config)
    plan = plan_boot(need(10), snapshot.instances, config, quotas=snapshot.quotas)
    assert plan.total == 4  # 20 - 2 = 18 vCPUs: four VMs of 4
    name = "L-1216C47A (Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances)"
    assert plan.unplaced[0].reason == f"aws's quota is used up (left: 15 VMs, 2 vCPUs under {name})"

    report = execute_boot(plan, clouds, config, KEY, NOW, Backoff())
    assert [(o.asked, len(o.started), o.error) for o in report.outcomes] == [(4, 4, None)]
    after = take_snapshot(None, clouds, config)
    assert left(after.quotas["aws"]) == {STANDARD: 2}
    assert plan_boot(need(10), after.instances, config, quotas=after.quotas).total == 0


def test_a_hung_service_quotas_leaves_the_configured_limits(
    ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    service_quotas.hang.set()
    extra = f'service_quotas_endpoint_url = "{service_quotas.endpoint}"\nread_timeout = 1\n'
    config = parse_config(cloud_toml(ec2, extra))
    clouds = {"aws": make_cloud("aws", config.clouds["aws"])}

    started = time.monotonic()
    snapshot = take_snapshot(None, clouds, config)
    assert time.monotonic() - started < 10
    assert snapshot.failed_clouds == set() and snapshot.errors == []  # listed all the same
    error = snapshot.quotas["aws"].error
    assert error is not None and error.startswith(
        "cloud aws: Service Quotas ListServiceQuotas failed: Read timeout"
    )
    assert error.endswith(f"({FIX})")
    plan = plan_boot(need(30), snapshot.instances, config, quotas=snapshot.quotas)
    assert plan.total == 30  # within max_vms, as configured
    assert plan.notes == [f"cloud aws: quota unknown ({error}); placed within its configured limits only"]
