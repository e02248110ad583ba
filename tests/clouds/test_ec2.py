"""The EC2 driver against a real EC2 API: moto's server mode, boto3 over HTTP on loopback.

API calls are counted on the wire side of botocore (``before-send``), after retries
and pagination have turned one driver call into requests. Errors moto cannot produce
(capacity, limits, throttling) are injected at the same place.
"""

from __future__ import annotations

import base64
import gzip
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from csctl.clouds.ec2 import TERMINATE_CHUNK, USER_DATA_LIMIT, Driver, Settings
from csctl.errors import (
    CloudAuthError,
    CloudBackendError,
    CloudBadRequest,
    CloudCapacityError,
    CloudError,
    CloudNotFound,
    CloudPriceError,
    CloudQuotaError,
    CloudThrottled,
    CloudTimeout,
)
from csctl.model import (
    TAG_BATCH,
    TAG_BOOTED,
    TAG_CLOUD,
    TAG_JOINED,
    TAG_POOL,
    TAG_TYPE,
    BootRequest,
    Instance,
    Quota,
    VMState,
)
from testbed.fixtures_moto import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    EC2Server,
    error_response,
    free_port,
    grant_max_count,
)

CLOUD = "hermes"
POOL = "pool-a"


class Calls:
    """What a driver's client does: the parameters it is called with and the requests it sends."""

    def __init__(self, driver: Driver) -> None:
        self.ops: list[str] = []  # one per HTTP request (pages and retries each count)
        self.bodies: list[dict[str, list[str]]] = []
        self.params: dict[str, dict[str, Any]] = {}  # the driver's parameters, per operation
        self.all_params: list[tuple[str, dict[str, Any]]] = []  # every call's, in order
        driver.client.meta.events.register("before-send.ec2.*", self._record_send)
        driver.client.meta.events.register("provide-client-params.ec2.*", self._record_params)

    def _record_send(self, request: Any, event_name: str, **_: Any) -> None:
        self.ops.append(event_name.rsplit(".", 1)[1])
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        self.bodies.append(parse_qs(body))

    def _record_params(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        self.params[event_name.rsplit(".", 1)[1]] = dict(params)
        self.all_params.append((event_name.rsplit(".", 1)[1], dict(params)))

    def body(self, op: str) -> dict[str, list[str]]:
        return self.bodies[self.ops.index(op)]

    def params_of(self, op: str, n: int) -> dict[str, Any]:
        """The parameters of the ``n``-th call (0-based) of ``op``."""
        return [params for name, params in self.all_params if name == op][n]


def inject(driver: Driver, op: str, code: str, message: str = "injected by the test") -> None:
    """Make every ``op`` request of the driver fail with ``code`` instead of reaching the server."""
    driver.client.meta.events.register(
        f"before-send.ec2.{op}", lambda **_: error_response(code, message), unique_id=f"inject-{op}"
    )


def make_driver(ec2: EC2Server, grant: bool = True, **settings: Any) -> Driver:
    """A driver on the test bed; ``grant``: moto starts whole batches, as AWS with capacity does."""
    values = {"region": ec2.region, "profile": ec2.profile, "endpoint_url": ec2.endpoint, **settings}
    driver = Driver(CLOUD, Settings(**values))
    if grant:
        grant_max_count(driver.client)
    return driver


def make_request(
    ec2: EC2Server, batch: str = "hermes-ab12cd34", count: int = 3, pool: str = POOL, **fields: Any
) -> BootRequest:
    tags = {TAG_POOL: pool, TAG_TYPE: "pandacernvm", TAG_CLOUD: CLOUD, TAG_BATCH: batch}
    values: dict[str, Any] = {
        "batch_id": batch,
        "vm_type": "pandacernvm",
        "count": count,
        "image": ec2.image_id(),
        "flavor": "t3.micro",
        "user_data": b"#cloud-config\n",
        "tags": {**tags, TAG_BOOTED: "2026-01-01T00:00:00Z"},
        **fields,
    }
    return BootRequest(**values)


def raw_instances(ec2: EC2Server, **kwargs: Any) -> list[dict[str, Any]]:
    pages = ec2.client().get_paginator("describe_instances").paginate(**kwargs)
    return [vm for page in pages for res in page["Reservations"] for vm in res["Instances"]]


@pytest.fixture
def driver(ec2: EC2Server) -> Driver:
    return make_driver(ec2)


# -- boot ------------------------------------------------------------------------


def test_boot_starts_a_batch_in_one_call(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)

    started = driver.boot(make_request(ec2, count=3))

    assert calls.ops == ["RunInstances"]
    assert (calls.params["RunInstances"]["MinCount"], calls.params["RunInstances"]["MaxCount"]) == (1, 3)
    assert sorted(vm.csctl_id for vm in started) == [f"hermes-ab12cd34-{i}" for i in range(3)]
    assert {(vm.cloud, vm.vm_type) for vm in started} == {(CLOUD, "pandacernvm")}
    assert {vm.state for vm in started} <= {VMState.BOOTING, VMState.RUNNING}
    assert len({vm.provider_id for vm in started}) == 3


def test_boot_returns_what_the_cloud_granted(ec2: EC2Server) -> None:
    driver = make_driver(ec2, grant=False)  # moto then grants MinCount: one VM

    started = driver.boot(make_request(ec2, count=3))

    assert [vm.csctl_id for vm in started] == ["hermes-ab12cd34-0"]
    assert [vm.csctl_id for vm in driver.list_instances(POOL)] == ["hermes-ab12cd34-0"]


def test_boot_tags_every_instance_with_the_batch(ec2: EC2Server, driver: Driver) -> None:
    driver.boot(make_request(ec2, count=2))

    for raw in raw_instances(ec2):
        tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
        assert tags == {
            "Name": "hermes-ab12cd34",
            TAG_POOL: POOL,
            TAG_TYPE: "pandacernvm",
            TAG_CLOUD: CLOUD,
            TAG_BATCH: "hermes-ab12cd34",
            TAG_BOOTED: "2026-01-01T00:00:00Z",
        }
        assert raw["InstanceType"] == "t3.micro"
        assert raw["ImageId"] == ec2.image_id()


def test_user_data_round_trip(ec2: EC2Server, driver: Driver) -> None:
    payload = gzip.compress(b"#cloud-config\nwrite_files: []\n" * 50)  # binary, as csctl sends it

    (vm,) = driver.boot(make_request(ec2, count=1, user_data=payload))

    answer = ec2.client().describe_instance_attribute(InstanceId=vm.provider_id, Attribute="userData")
    assert base64.b64decode(answer["UserData"]["Value"]) == payload


def test_user_data_of_exactly_16_kb_is_sent(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1, user_data=b"x" * USER_DATA_LIMIT))
    assert vm.provider_id.startswith("i-")


def test_user_data_over_16_kb_is_refused_before_any_call(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(ec2, user_data=b"x" * (USER_DATA_LIMIT + 1)))

    assert calls.ops == []
    assert err.value.message == (
        "cloud hermes: batch hermes-ab12cd34: user-data is 16385 bytes, EC2 allows at most 16384 (16 KB)"
    )


def test_missing_flavor_is_refused_before_any_call(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)

    with pytest.raises(CloudBadRequest, match="VM type pandacernvm has no instance type"):
        driver.boot(make_request(ec2, flavor=None))

    assert calls.ops == []


def test_boot_without_pool_tag_is_refused(ec2: EC2Server, driver: Driver) -> None:
    with pytest.raises(CloudBadRequest, match="no csctl-pool tag"):
        driver.boot(make_request(ec2, tags={TAG_TYPE: "pandacernvm"}))


def test_spot_bid_reaches_the_api(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)

    (vm,) = driver.boot(make_request(ec2, count=1, max_price=0.05))

    body = calls.body("RunInstances")
    assert body["InstanceMarketOptions.MarketType"] == ["spot"]
    assert body["InstanceMarketOptions.SpotOptions.MaxPrice"] == ["0.05"]
    assert body["InstanceMarketOptions.SpotOptions.SpotInstanceType"] == ["one-time"]
    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    assert raw["InstanceLifecycle"] == "spot"


def test_on_demand_without_a_price(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)

    (vm,) = driver.boot(make_request(ec2, count=1))

    assert not any(key.startswith("InstanceMarketOptions") for key in calls.body("RunInstances"))
    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    assert "InstanceLifecycle" not in raw


def test_network_settings_reach_the_instance(ec2: EC2Server) -> None:
    client = ec2.client()
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = client.create_security_group(GroupName="csctl", Description="vms", VpcId=vpc)["GroupId"]
    client.create_key_pair(KeyName="csctl-key")
    driver = make_driver(ec2, subnet_id=subnet, security_group_ids=[group], key_name="csctl-key")

    (vm,) = driver.boot(make_request(ec2, count=1))

    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    assert raw["SubnetId"] == subnet
    assert [g["GroupId"] for g in raw["SecurityGroups"]] == [group]
    assert raw["KeyName"] == "csctl-key"
    assert vm.address is not None and vm.address.startswith("10.9.1.")


def test_vms_boot_with_imdsv2_required_and_a_hop_limit_of_one(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    options = raw["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 1)
    assert options["HttpEndpoint"] == "enabled"


def test_a_cloud_may_relax_the_metadata_options(ec2: EC2Server) -> None:
    driver = make_driver(ec2, metadata_tokens="optional", metadata_hop_limit=2)
    (vm,) = driver.boot(make_request(ec2, count=1))
    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    assert (raw["MetadataOptions"]["HttpTokens"], raw["MetadataOptions"]["HttpPutResponseHopLimit"]) == (
        "optional",
        2,
    )


def test_a_cloud_that_refuses_metadata_options_can_go_without(ec2: EC2Server) -> None:
    sent: list[dict[str, Any]] = []
    driver = make_driver(ec2, metadata_options=False)
    driver.client.meta.events.register(
        "provide-client-params.ec2.RunInstances", lambda params, **_: sent.append(dict(params))
    )
    driver.boot(make_request(ec2, count=1))
    assert sent and "MetadataOptions" not in sent[0]


@pytest.mark.parametrize(
    ("fields", "settings", "code"),
    [
        ({"image": "ami-12345678"}, {}, "InvalidAMIID.NotFound"),
        ({"flavor": "nope.large"}, {}, "InvalidInstanceType.NotFound"),
        ({}, {"subnet_id": "subnet-12345678"}, "InvalidSubnetID.NotFound"),
        ({}, {"security_group_ids": ["sg-12345678"]}, "InvalidGroup.NotFound"),
        ({}, {"key_name": "no-such-key"}, "InvalidKeyPair.NotFound"),
    ],
)
def test_requests_the_cloud_rejects(
    ec2: EC2Server, fields: dict[str, Any], settings: dict[str, Any], code: str
) -> None:
    driver = make_driver(ec2, **settings)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(ec2, **fields))

    assert err.value.message.startswith(f"cloud hermes: RunInstances failed: {code}: ")
    assert "\n" not in err.value.message


# -- list ------------------------------------------------------------------------


def test_list_finds_the_pool_in_one_call(ec2: EC2Server, driver: Driver) -> None:
    booted = driver.boot(make_request(ec2, count=3))
    driver.boot(make_request(ec2, batch="hermes-other000", count=2, pool="pool-b"))
    calls = Calls(driver)

    listed = driver.list_instances(POOL)

    assert calls.ops == ["DescribeInstances"]
    assert sorted(vm.csctl_id for vm in listed) == sorted(vm.csctl_id for vm in booted)
    by_id = {vm.provider_id: vm for vm in listed}
    for vm in booted:
        seen = by_id[vm.provider_id]
        assert seen.state is VMState.RUNNING  # moto runs instances at once
        assert (seen.cloud, seen.vm_type, seen.fault) == (CLOUD, "pandacernvm", None)
        assert seen.address is not None and seen.booted_at is not None
        assert seen.booted_at.tzinfo is not None


def test_list_pages_past_100_reservations(ec2: EC2Server, driver: Driver) -> None:
    for n in range(101):
        driver.boot(make_request(ec2, batch=f"hermes-{n:08x}", count=1))
    calls = Calls(driver)

    listed = driver.list_instances(POOL)

    assert len(listed) == 101
    assert len({vm.csctl_id for vm in listed}) == 101
    assert calls.ops == ["DescribeInstances", "DescribeInstances"]  # two pages, one paginated call


def test_list_reports_stopped_instances_with_their_reason(ec2: EC2Server, driver: Driver) -> None:
    vm, _ = driver.boot(make_request(ec2, count=2))
    ec2.client().stop_instances(InstanceIds=[vm.provider_id])

    states = {i.provider_id: (i.state, i.fault) for i in driver.list_instances(POOL)}

    assert states[vm.provider_id] == (
        VMState.STOPPED,
        "Client.UserInitiatedShutdown: User initiated shutdown",
    )


def test_list_of_an_empty_pool(ec2: EC2Server, driver: Driver) -> None:
    assert driver.list_instances("nobody") == []


# -- terminate, console, quota ---------------------------------------------------


def test_terminate_in_one_call(ec2: EC2Server, driver: Driver) -> None:
    a, b, c = driver.boot(make_request(ec2, count=3))
    calls = Calls(driver)

    accepted = driver.terminate([a, c])

    assert calls.ops == ["TerminateInstances"]
    assert sorted(accepted) == sorted([a.csctl_id, c.csctl_id])
    assert [vm.csctl_id for vm in driver.list_instances(POOL)] == [b.csctl_id]


def test_terminate_treats_vanished_instances_as_gone(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    ghosts = [
        Instance(f"hermes-gone-{n}", CLOUD, "pandacernvm", VMState.RUNNING, f"i-0123456789abcdef{n}")
        for n in range(2)
    ]
    calls = Calls(driver)

    accepted = driver.terminate([*ghosts, vm])

    assert sorted(accepted) == sorted(["hermes-gone-0", "hermes-gone-1", vm.csctl_id])
    assert calls.ops == ["TerminateInstances", "TerminateInstances"]  # refused, then without ghosts
    assert driver.list_instances(POOL) == []


def test_terminate_nothing_calls_nothing(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)
    assert driver.terminate([]) == []
    assert calls.ops == []


# -- the joined tag --------------------------------------------------------------

JOINED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_mark_joined_tags_in_one_call_and_list_reads_it(ec2: EC2Server, driver: Driver) -> None:
    a, b, c = driver.boot(make_request(ec2, count=3))
    assert {vm.joined_at for vm in driver.list_instances(POOL)} == {None}
    calls = Calls(driver)

    marked = driver.mark_joined([a, c], JOINED)

    assert calls.ops == ["CreateTags"]
    assert sorted(calls.params["CreateTags"]["Resources"]) == sorted([a.provider_id, c.provider_id])
    assert sorted(marked) == sorted([a.csctl_id, c.csctl_id])
    joined = {vm.csctl_id: vm.joined_at for vm in driver.list_instances(POOL)}
    assert joined == {a.csctl_id: JOINED, b.csctl_id: None, c.csctl_id: JOINED}
    (raw,) = raw_instances(ec2, InstanceIds=[a.provider_id])
    assert {t["Key"]: t["Value"] for t in raw["Tags"]}[TAG_JOINED] == "2026-03-04T05:06:07Z"


def test_mark_joined_writes_utc(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    later = datetime.fromisoformat("2026-03-04T07:06:07+02:00")

    driver.mark_joined([vm], later)

    (raw,) = raw_instances(ec2, InstanceIds=[vm.provider_id])
    assert {t["Key"]: t["Value"] for t in raw["Tags"]}[TAG_JOINED] == "2026-03-04T05:06:07Z"
    assert [i.joined_at for i in driver.list_instances(POOL)] == [JOINED]


def test_mark_joined_chunks_like_terminate(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    # moto tags ids it does not know, so made-up ones stand in for a thousand instances
    others = [
        Instance(f"hermes-many-{n}", CLOUD, "pandacernvm", VMState.RUNNING, f"i-{n:017x}")
        for n in range(TERMINATE_CHUNK)
    ]
    calls = Calls(driver)

    marked = driver.mark_joined([*others, vm], JOINED)

    assert calls.ops == ["CreateTags", "CreateTags"]
    assert [len(calls.params_of("CreateTags", n)["Resources"]) for n in (0, 1)] == [TERMINATE_CHUNK, 1]
    assert sorted(marked) == sorted([vm.csctl_id, *(i.csctl_id for i in others)])
    assert [i.joined_at for i in driver.list_instances(POOL)] == [JOINED]


@pytest.mark.parametrize(
    "value",
    ["not a time", "", "2026-13-45T99:00:00Z", "0001-01-01T00:00:00+01:00", "2026-03-04T05:06:07Z" * 4],
)
def test_a_joined_tag_that_is_not_a_time_reads_as_none(ec2: EC2Server, driver: Driver, value: str) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    ec2.client().create_tags(Resources=[vm.provider_id], Tags=[{"Key": TAG_JOINED, "Value": value}])

    (listed,) = driver.list_instances(POOL)

    assert (listed.csctl_id, listed.joined_at) == (vm.csctl_id, None)


def test_mark_joined_skips_vanished_instances(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))
    ghost = Instance("hermes-gone-0", CLOUD, "pandacernvm", VMState.RUNNING, "i-0123456789abcdef0")
    # moto tags any id; AWS refuses the whole call and names the ids it does not know
    refusal = error_response(
        "InvalidInstanceID.NotFound", f"The instance ID '{ghost.provider_id}' does not exist"
    )

    def refuse_ghost(request: Any, **_: Any) -> Any:
        return refusal if ghost.provider_id in str(request.body) else None

    driver.client.meta.events.register("before-send.ec2.CreateTags", refuse_ghost)
    calls = Calls(driver)

    assert driver.mark_joined([ghost, vm], JOINED) == [vm.csctl_id]
    assert calls.ops == ["CreateTags", "CreateTags"]  # refused, then without the ghost
    assert [i.joined_at for i in driver.list_instances(POOL)] == [JOINED]


def test_mark_joined_errors_are_translated(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=1)
    (vm,) = driver.boot(make_request(ec2, count=1))
    inject(driver, "CreateTags", "UnauthorizedOperation", "You are not authorized to perform this operation.")

    with pytest.raises(CloudAuthError, match="CreateTags failed: UnauthorizedOperation"):
        driver.mark_joined([vm], JOINED)


def test_mark_joined_of_nothing_calls_nothing(ec2: EC2Server, driver: Driver) -> None:
    calls = Calls(driver)
    assert driver.mark_joined([], JOINED) == []
    assert calls.ops == []


def test_console_output(ec2: EC2Server, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(ec2, count=1))

    assert "Linux version" in driver.console_output(vm)


def test_console_output_of_unknown_instance(ec2: EC2Server, driver: Driver) -> None:
    ghost = Instance("hermes-gone-0", CLOUD, "t", VMState.RUNNING, "i-0123456789abcdef0")

    with pytest.raises(CloudNotFound, match="GetConsoleOutput failed: InvalidInstanceID.NotFound"):
        driver.console_output(ghost)


def test_quota_is_the_limit_minus_active_instances(ec2: EC2Server, driver: Driver) -> None:
    driver.boot(make_request(ec2, count=3))

    assert driver.quota() == Quota(instances=20 - 3)  # moto's max-instances is 20


def test_quota_where_the_cloud_has_no_account_attributes(ec2: EC2Server, driver: Driver) -> None:
    inject(driver, "DescribeAccountAttributes", "InvalidAction", "not implemented here")
    assert driver.quota() == Quota()


# -- errors ----------------------------------------------------------------------

MAPPING = [
    ("AuthFailure", CloudAuthError),
    ("UnauthorizedOperation", CloudAuthError),
    ("InvalidClientTokenId", CloudAuthError),
    ("SignatureDoesNotMatch", CloudAuthError),
    ("InstanceLimitExceeded", CloudQuotaError),
    ("InsufficientInstanceCapacity", CloudCapacityError),
    ("InsufficientFreeAddressesInSubnet", CloudCapacityError),
    ("VcpuLimitExceeded", CloudQuotaError),
    ("MaxSpotInstanceCountExceeded", CloudQuotaError),
    ("SpotMaxPriceTooLow", CloudPriceError),
    ("RequestLimitExceeded", CloudThrottled),
    ("InvalidAMIID.Malformed", CloudBadRequest),
    ("InvalidParameterValue", CloudBadRequest),
    ("InvalidSubnetID.NotFound", CloudBadRequest),
    ("InvalidGroup.NotFound", CloudBadRequest),
    ("InvalidKeyPair.NotFound", CloudBadRequest),
    ("Unsupported", CloudBadRequest),
    ("InvalidInstanceID.NotFound", CloudNotFound),
    ("InternalError", CloudBackendError),
]


@pytest.mark.parametrize(("code", "kind"), MAPPING)
def test_boot_errors_are_translated(ec2: EC2Server, code: str, kind: type[CloudError]) -> None:
    driver = make_driver(ec2, max_attempts=1)
    inject(driver, "RunInstances", code, "We currently do not\nhave that.")

    with pytest.raises(kind) as err:
        driver.boot(make_request(ec2))

    assert type(err.value) is kind
    expected = f"cloud hermes: RunInstances failed: {code}: We currently do not have that."
    if kind is CloudPriceError:  # with the price a bid must beat (test_ec2_placement.py)
        history = ec2.client().describe_spot_price_history(InstanceTypes=["t3.micro"])["SpotPriceHistory"]
        expected += f"; spot price now {min(float(h['SpotPrice']) for h in history):g}"
    assert err.value.message == expected


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("InsufficientInstanceCapacity", "configure several subnets or availability_zones"),
        ("InstanceLimitExceeded", "ask for fewer VMs, another instance type or region, or try again later"),
    ],
)
def test_capacity_errors_start_nothing(ec2: EC2Server, code: str, hint: str) -> None:
    driver = make_driver(ec2, max_attempts=1)
    inject(driver, "RunInstances", code)

    with pytest.raises(CloudQuotaError) as err:
        driver.boot(make_request(ec2))

    assert err.value.hint is not None and err.value.hint.startswith(hint)
    assert raw_instances(ec2) == []


def test_transient_errors_are_retried_within_max_attempts(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=2)
    failures = iter([error_response("InternalError", "try again", status=500)])
    driver.client.meta.events.register("before-send.ec2.DescribeInstances", lambda **_: next(failures, None))
    calls = Calls(driver)

    assert driver.list_instances(POOL) == []
    assert calls.ops == ["DescribeInstances", "DescribeInstances"]


def test_access_key_ids_are_masked(ec2: EC2Server) -> None:
    driver = make_driver(ec2, max_attempts=1)
    inject(driver, "DescribeInstances", "UnauthorizedOperation", f"key {ACCESS_KEY_ID} may not")

    with pytest.raises(CloudAuthError) as err:
        driver.list_instances(POOL)

    assert ACCESS_KEY_ID not in str(err.value)
    assert "key <access key id> may not" in str(err.value)


def test_credentials_the_cloud_rejects(ec2: EC2Server, ec2_auth_server: Any) -> None:
    driver = make_driver(ec2, endpoint_url=ec2_auth_server.endpoint)

    with pytest.raises(CloudAuthError) as err:
        driver.list_instances(POOL)

    assert err.value.message == (
        "cloud hermes: DescribeInstances failed: AuthFailure: "
        "AWS was not able to validate the provided access credentials"
    )
    assert err.value.hint == "check AWS profile 'csctl-test' in ~/.aws/config and ~/.aws/credentials"
    assert SECRET_ACCESS_KEY not in f"{err.value} {err.value.hint}"


def test_unknown_profile(ec2: EC2Server) -> None:
    driver = make_driver(ec2, grant=False, profile="nosuch")

    with pytest.raises(CloudAuthError) as err:
        driver.list_instances(POOL)

    assert err.value.message == "cloud hermes: AWS profile 'nosuch' not found"
    assert err.value.hint is not None and "'nosuch'" in err.value.hint


def test_no_credentials_anywhere(ec2: EC2Server) -> None:
    driver = make_driver(ec2, profile=None)

    with pytest.raises(CloudAuthError) as err:
        driver.list_instances(POOL)

    assert err.value.message == "cloud hermes: DescribeInstances failed: Unable to locate credentials"
    assert err.value.hint is not None and "default AWS credential chain" in err.value.hint


def test_default_credential_chain(ec2: EC2Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    driver = make_driver(ec2, profile=None)

    assert driver.list_instances(POOL) == []


def test_closed_port(ec2: EC2Server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    driver = make_driver(ec2, endpoint_url=url, connect_timeout=1, max_attempts=1)

    calls = Calls(driver)

    start = time.monotonic()
    with pytest.raises(CloudTimeout) as err:
        driver.list_instances(POOL)

    assert time.monotonic() - start < 5
    assert calls.ops == ["DescribeInstances"]  # max_attempts counts the first try
    assert (
        err.value.message
        == f'cloud hermes: DescribeInstances failed: Could not connect to the endpoint URL: "{url}/"'
    )
    assert err.value.hint == f"check that {url} is reachable from this host"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_endpoint_that_never_answers(ec2: EC2Server, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    driver = make_driver(ec2, endpoint_url=url, read_timeout=0.5, max_attempts=1)

    calls = Calls(driver)

    with pytest.raises(CloudTimeout) as err:
        driver.list_instances(POOL)

    assert calls.ops == ["DescribeInstances"]
    assert (
        err.value.message == f'cloud hermes: DescribeInstances failed: Read timeout on endpoint URL: "{url}/"'
    )


# -- configuration and packaging -------------------------------------------------


def test_driver_from_the_configuration(ec2: EC2Server) -> None:
    from csctl.clouds.registry import make_cloud
    from csctl.config import parse_config

    config = parse_config(
        '[pool]\nname = "pool.test"\ncollector = "127.0.0.1:9618"\n'
        f'[clouds.hermes]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\n'
    )

    cloud = make_cloud("hermes", config.clouds["hermes"])

    assert isinstance(cloud, Driver)
    assert cloud.list_instances(POOL) == []


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "ftp://example.org", "http://"])
def test_endpoint_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="expected an http:// or https:// URL"):
        Settings(region="r", endpoint_url=url)


def test_boto3_is_imported_only_on_first_use() -> None:
    code = (
        "import sys\n"
        "from csctl.clouds.ec2 import Driver, Settings\n"
        "Driver('x', Settings(region='r'))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_two_clouds_in_one_account_list_only_their_own(ec2: EC2Server, driver: Driver) -> None:
    other = Driver("hermes-2", driver.settings)
    grant_max_count(other.client)
    driver.boot(make_request(ec2, count=2))
    theirs = other.boot(
        make_request(ec2, batch="hermes-2-00000000", count=1, tags={TAG_POOL: POOL, TAG_CLOUD: "hermes-2"})
    )
    assert {i.cloud for i in driver.list_instances(POOL)} == {CLOUD}
    assert [i.csctl_id for i in other.list_instances(POOL)] == [i.csctl_id for i in theirs]
