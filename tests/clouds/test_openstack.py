"""The OpenStack driver against a real Nova API (testbed/nova), connected through clouds.yaml.

Every driver here connects as in production, ``openstack.connect(cloud=...)``, reading a
clouds.yaml written to a temporary directory (``OS_CLIENT_CONFIG_FILE``) whose entries
say ``auth_type: none`` and ``compute_endpoint_override``. HTTP requests are counted on
the connection's requests session (a response hook), after the SDK has paginated and
retried; keystoneauth's version discovery, once per connection, is not counted. Errors
Nova cannot be made to produce (401, policy 403, rate limits, dropped connections) are
injected at that same edge, by a transport adapter.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("openstack")

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from csctl.clouds.openstack import TAG_IMAGE, USER_DATA_LIMIT, Driver, Settings  # noqa: E402
from csctl.errors import (  # noqa: E402
    CloudAuthError,
    CloudBackendError,
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudQuotaError,
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

pytestmark = [
    pytest.mark.nova,
    # Nova's image API is a deprecated proxy to glance; it is the one the test bed serves.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:openstack"),
]

CLOUD = "hermes"
POOL = "pool-a"
BATCH = "hermes-ab12cd34"
WAIT = 30  # seconds; the fake hypervisor spawns in ~0.5 s
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PREFIX = re.compile(r"^(/admin)?/v2\.1(/[0-9a-f]{32})?")


class Calls:
    """The HTTP requests a driver's connection sends, as ``"METHOD /path"`` (ids as {id})."""

    def __init__(self, driver: Driver) -> None:
        self.requests: list[str] = []
        self.bodies: list[Any] = []
        driver.conn.session.session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = _PREFIX.sub("", urlsplit(response.request.url).path)
        if path in ("", "/"):
            return  # version discovery
        self.requests.append(f"{response.request.method} {_ID.sub('{id}', path)}")
        body = response.request.body
        self.bodies.append(json.loads(body) if body else None)

    def body(self, request: str) -> Any:
        return self.bodies[self.requests.index(request)]


class Inject(HTTPAdapter):
    """Answers requests matching ``method`` and ``path`` (a regex) itself; passes on the rest."""

    def __init__(self, method: str, path: str, status: int = 0, message: str = "", raises: Any = None):
        super().__init__()
        self.method, self.path, self.status, self.message, self.raises = method, path, status, message, raises

    def send(self, request: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.method != self.method or not re.search(self.path, urlsplit(request.url).path):
            return super().send(request, **kwargs)
        if self.raises is not None:
            raise self.raises
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"error": {"code": self.status, "message": self.message}}).encode()
        response.request, response.url = request, request.url
        return response


def inject(
    driver: Driver, method: str, path: str, status: int = 0, message: str = "", raises: Any = None
) -> None:
    driver.conn.session.session.mount("http://", Inject(method, path, status, message, raises))


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="session")
def flavors(nova_api: Any) -> Iterator[dict[str, Any]]:
    """A tiny flavor (hundreds fit the fake hypervisor) and one whose disk no host has."""
    admin = nova_api.connect(admin=True)
    suffix = uuid.uuid4().hex[:8]
    made = {
        "tiny": admin.compute.create_flavor(name=f"csctl.tiny-{suffix}", ram=64, vcpus=1, disk=1),
        "huge": admin.compute.create_flavor(name=f"csctl.huge-{suffix}", ram=64, vcpus=1, disk=2000),
    }
    yield made
    for flavor in made.values():
        admin.compute.delete_flavor(flavor)


@pytest.fixture
def project(nova_api: Any) -> Iterator[str]:
    """A fresh project; its servers are deleted afterwards so the fake hypervisor stays roomy."""
    project_id = nova_api.new_project()
    yield project_id
    admin = nova_api.connect(project_id, admin=True)
    for server in admin.compute.servers():
        admin.compute.delete_server(server, ignore_missing=True)


@pytest.fixture
def clouds_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Path]:
    """Write a clouds.yaml with the given entries and make openstacksdk read it, and only it."""
    for var in [v for v in __import__("os").environ if v.startswith("OS_")]:
        monkeypatch.delenv(var)
    path = tmp_path / "clouds.yaml"
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))

    def write(entries: dict[str, Any]) -> Path:
        path.write_text(json.dumps({"clouds": entries}))  # JSON is YAML
        return path

    return write


@pytest.fixture
def testbed_cloud(nova_api: Any, project: str, clouds_yaml: Any) -> str:
    """The clouds.yaml entry "testbed": the test project as a member."""
    entry = {"auth_type": "none", "compute_endpoint_override": nova_api.endpoint_for(project)}
    clouds_yaml({"testbed": entry})
    return "testbed"


def make_driver(nova_api: Any, name: str = CLOUD, **settings: Any) -> Driver:
    values = {"cloud": "testbed", "network": nova_api.network_id, **settings}
    return Driver(name, Settings(**values))


@pytest.fixture
def driver(nova_api: Any, testbed_cloud: str) -> Driver:
    return make_driver(nova_api)


def make_request(
    nova_api: Any,
    flavors: dict[str, Any],
    batch: str = BATCH,
    count: int = 3,
    pool: str = POOL,
    **fields: Any,
) -> BootRequest:
    tags = {TAG_POOL: pool, TAG_TYPE: "pandacernvm", TAG_CLOUD: CLOUD, TAG_BATCH: batch}
    values: dict[str, Any] = {
        "batch_id": batch,
        "vm_type": "pandacernvm",
        "count": count,
        "image": nova_api.image_id,
        "flavor": flavors["tiny"].id,
        "user_data": b"#cloud-config\n",
        "tags": {**tags, TAG_BOOTED: "2026-01-01T00:00:00Z"},
        **fields,
    }
    return BootRequest(**values)


def admin_servers(nova_api: Any, project: str) -> list[Any]:
    return list(nova_api.connect(project, admin=True).compute.servers(details=True))


def wait_for(driver: Driver, done: Callable[[list[Instance]], bool], pool: str = POOL) -> list[Instance]:
    deadline = time.monotonic() + WAIT
    while not done(listed := driver.list_instances(pool)):
        assert time.monotonic() < deadline, f"still {[(i.csctl_id, i.state) for i in listed]}"
        time.sleep(0.2)
    return listed


def ids(instances: list[Instance]) -> list[str]:
    return sorted(vm.csctl_id for vm in instances)


# -- boot ------------------------------------------------------------------------


def test_boot_starts_a_batch_in_one_call(nova_api: Any, flavors: Any, driver: Driver) -> None:
    calls = Calls(driver)

    started = driver.boot(make_request(nova_api, flavors, count=3))

    assert calls.requests == ["GET /flavors/{id}", "POST /servers", "GET /servers/detail"]
    server = calls.body("POST /servers")["server"]
    assert (server["min_count"], server["max_count"], server["name"]) == (1, 3, BATCH)
    assert server["networks"] == [{"uuid": nova_api.network_id}]
    assert ids(started) == [f"{BATCH}-{i}" for i in range(3)]
    assert {(vm.cloud, vm.vm_type, vm.state) for vm in started} == {(CLOUD, "pandacernvm", VMState.BOOTING)}
    assert len({vm.provider_id for vm in started}) == 3


def test_csctl_ids_follow_the_launch_index_the_vms_see(
    nova_api: Any, flavors: Any, driver: Driver, project: str
) -> None:
    started = driver.boot(make_request(nova_api, flavors, count=3))

    # Only an admin sees OS-EXT-SRV-ATTR:launch_index (the index a VM reads from its metadata).
    index = {s.id: s.launch_index for s in admin_servers(nova_api, project)}
    assert {vm.csctl_id: f"{BATCH}-{index[vm.provider_id]}" for vm in started} == {
        vm.csctl_id: vm.csctl_id for vm in started
    }
    member_view = driver.conn.compute.get_server(started[0].provider_id)
    assert member_view.launch_index is None
    assert sorted(s.name for s in driver.conn.compute.servers()) == [f"{BATCH}-{i}" for i in (1, 2, 3)]


def test_a_lone_server_keeps_the_batch_name(
    nova_api: Any, flavors: Any, driver: Driver, project: str
) -> None:
    (vm,) = driver.boot(make_request(nova_api, flavors, count=1))

    (server,) = admin_servers(nova_api, project)
    assert (server.name, server.launch_index) == (BATCH, 0)
    assert vm.csctl_id == f"{BATCH}-0"


def test_boot_writes_the_batch_metadata(nova_api: Any, flavors: Any, driver: Driver) -> None:
    driver.boot(make_request(nova_api, flavors, count=2))

    for server in driver.conn.compute.servers(details=True):
        assert server.metadata == {
            TAG_POOL: POOL,
            TAG_TYPE: "pandacernvm",
            TAG_CLOUD: CLOUD,
            TAG_BATCH: BATCH,
            TAG_BOOTED: "2026-01-01T00:00:00Z",
            TAG_IMAGE: nova_api.image_id,
        }
        assert server.image["id"] == nova_api.image_id
        assert server.flavor["original_name"] == flavors["tiny"].name


def test_user_data_round_trip(nova_api: Any, flavors: Any, driver: Driver, project: str) -> None:
    payload = gzip.compress(b"#cloud-config\nwrite_files: []\n" * 50)  # binary, as csctl sends it

    (vm,) = driver.boot(make_request(nova_api, flavors, count=1, user_data=payload))

    assert nova_api.user_data(vm.provider_id, project) == payload


def test_user_data_limit_is_novas(nova_api: Any, flavors: Any, driver: Driver, project: str) -> None:
    (vm,) = driver.boot(make_request(nova_api, flavors, count=1, user_data=b"x" * USER_DATA_LIMIT))
    assert len(nova_api.user_data(vm.provider_id, project) or b"") == USER_DATA_LIMIT == 49149

    # One byte more and the base64 text is over Nova's maxLength of 65535.
    with pytest.raises(Exception, match="is too long"):
        driver.conn.compute.create_server(
            name="over",
            flavor_id=flavors["tiny"].id,
            image_id=nova_api.image_id,
            networks="none",
            user_data=base64.b64encode(b"x" * (USER_DATA_LIMIT + 1)).decode(),
        )


def test_user_data_over_the_limit_is_refused_before_any_call(
    nova_api: Any, flavors: Any, driver: Driver
) -> None:
    calls = Calls(driver)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors, user_data=b"x" * (USER_DATA_LIMIT + 1)))

    assert calls.requests == []
    assert err.value.message == (
        "cloud hermes: batch hermes-ab12cd34: user-data is 49150 bytes, "
        "Nova allows at most 49149 (65535 in base64)"
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"flavor": None}, "VM type pandacernvm has no flavor: OpenStack needs one"),
        ({"count": 0}, "asked for 0 VMs"),
        ({"tags": {TAG_TYPE: "pandacernvm"}}, "no csctl-pool tag: csctl could never find these VMs again"),
    ],
)
def test_requests_refused_before_any_call(
    nova_api: Any, flavors: Any, driver: Driver, fields: dict[str, Any], problem: str
) -> None:
    calls = Calls(driver)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors, **fields))

    assert err.value.message == f"cloud hermes: batch hermes-ab12cd34: {problem}"
    assert calls.requests == []


def test_build_then_active(nova_api: Any, flavors: Any, driver: Driver) -> None:
    driver.boot(make_request(nova_api, flavors, count=2))
    assert {vm.state for vm in driver.list_instances(POOL)} == {VMState.BOOTING}

    running = wait_for(driver, lambda vms: {vm.state for vm in vms} == {VMState.RUNNING})

    for vm in running:
        assert vm.address is not None and vm.address.startswith("192.168.")  # the fake neutron's net
        assert vm.booted_at is not None and vm.booted_at.tzinfo is not None
        assert vm.fault is None


def test_without_a_network_nova_picks_one(nova_api: Any, flavors: Any, testbed_cloud: str) -> None:
    driver = make_driver(nova_api, network=None)
    calls = Calls(driver)

    driver.boot(make_request(nova_api, flavors, count=1))

    assert calls.body("POST /servers")["server"]["networks"] == "auto"
    (vm,) = wait_for(driver, lambda vms: vms[0].state is VMState.RUNNING)
    assert vm.address is not None


def test_spot_price_is_ignored(nova_api: Any, flavors: Any, driver: Driver) -> None:
    calls = Calls(driver)

    (vm,) = driver.boot(make_request(nova_api, flavors, count=1, max_price=0.05))

    assert vm.csctl_id == f"{BATCH}-0"
    assert "max_price" not in json.dumps(calls.body("POST /servers"))


def test_image_and_flavor_by_name(nova_api: Any, flavors: Any, driver: Driver) -> None:
    image = driver.conn.compute.get_image(nova_api.image_id)
    others = [i for i in driver.conn.compute.images() if i.name == image.name]
    unique = next(i for i in driver.conn.compute.images() if [o.name for o in others].count(i.name) == 0)
    calls = Calls(driver)

    (vm,) = driver.boot(
        make_request(nova_api, flavors, count=1, image=unique.name, flavor=flavors["tiny"].name)
    )

    assert calls.requests == [
        "GET /images",
        "GET /flavors/" + flavors["tiny"].name,
        "GET /flavors/detail",
        "POST /servers",
        "GET /servers/detail",
    ]
    server = calls.body("POST /servers")["server"]
    assert (server["imageRef"], server["flavorRef"]) == (unique.id, flavors["tiny"].id)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": "no-such-image"}, "no image named 'no-such-image'"),
        ({"flavor": "no.such.flavor"}, "no flavor named 'no.such.flavor'"),
    ],
)
def test_unknown_names_are_refused_before_booting(
    nova_api: Any, flavors: Any, driver: Driver, fields: dict[str, Any], message: str
) -> None:
    calls = Calls(driver)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors, **fields))

    assert err.value.message == f"cloud hermes: {message}"
    assert "POST /servers" not in calls.requests


def test_ambiguous_image_name(nova_api: Any, flavors: Any, driver: Driver) -> None:
    name = driver.conn.compute.get_image(nova_api.image_id).name  # the fake glance has several

    with pytest.raises(CloudBadRequest, match=f"images named '{name}': configure its id instead"):
        driver.boot(make_request(nova_api, flavors, image=name))


@pytest.mark.parametrize(
    ("fields", "settings", "detail"),
    [
        ({"image": str(uuid.UUID(int=1))}, {}, "Can not find requested image"),
        ({"flavor": "0bad"}, {}, "no flavor named '0bad'"),
        ({}, {"network": str(uuid.UUID(int=2))}, f"Network {uuid.UUID(int=2)} could not be found."),
        ({}, {"key_name": "no-such-key"}, "Invalid key_name provided."),
        ({}, {"availability_zone": "atlantis"}, "The requested availability zone is not available"),
    ],
)
def test_requests_nova_rejects(
    nova_api: Any,
    flavors: Any,
    testbed_cloud: str,
    project: str,
    fields: dict[str, Any],
    settings: dict[str, Any],
    detail: str,
) -> None:
    driver = make_driver(nova_api, **settings)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors, **fields))

    assert err.value.message.endswith(detail)
    assert "\n" not in err.value.message
    assert admin_servers(nova_api, project) == []


def test_placement_settings_reach_the_server(nova_api: Any, flavors: Any, testbed_cloud: str) -> None:
    driver = make_driver(nova_api, security_groups=["default"], availability_zone="nova")
    calls = Calls(driver)

    driver.boot(make_request(nova_api, flavors, count=1))

    server = calls.body("POST /servers")["server"]
    assert (server["security_groups"], server["availability_zone"]) == ([{"name": "default"}], "nova")


# -- quota and capacity ----------------------------------------------------------


def test_no_room_left_is_a_quota_error(nova_api: Any, flavors: Any, driver: Driver, project: str) -> None:
    nova_api.set_quota(project, instances=0)

    with pytest.raises(CloudQuotaError) as err:
        driver.boot(make_request(nova_api, flavors, count=3))

    assert err.value.message == (
        "cloud hermes: create server failed: 403: "
        "Quota exceeded for instances: Requested 1-3, but already used 0 of 0 instances"
    )
    assert err.value.hint == "ask for fewer VMs or a smaller flavor, or raise the project's quota"
    assert admin_servers(nova_api, project) == []


@pytest.mark.parametrize(("room", "names"), [(2, [f"{BATCH}-1", f"{BATCH}-2"]), (1, [BATCH])])
def test_nova_boots_what_the_quota_allows(
    nova_api: Any, flavors: Any, driver: Driver, project: str, room: int, names: list[str]
) -> None:
    nova_api.set_quota(project, instances=room)

    started = driver.boot(make_request(nova_api, flavors, count=5))

    assert ids(started) == [f"{BATCH}-{i}" for i in range(room)]
    # Nova numbers the names by how many it boots, not by max_count: a lone one gets none.
    assert sorted(s.name for s in admin_servers(nova_api, project)) == names


def test_no_valid_host_is_listed_as_error(nova_api: Any, flavors: Any, driver: Driver) -> None:
    started = driver.boot(make_request(nova_api, flavors, count=2, flavor=flavors["huge"].id))
    assert len(started) == 2  # the create call succeeded

    failed = wait_for(driver, lambda vms: {vm.state for vm in vms} == {VMState.ERROR})

    assert ids(failed) == ids(started)
    assert {vm.fault for vm in failed} == {"No valid host was found."}


# -- list ------------------------------------------------------------------------


def test_list_finds_pool_and_cloud_in_one_call(nova_api: Any, flavors: Any, driver: Driver) -> None:
    booted = driver.boot(make_request(nova_api, flavors, count=2))
    driver.boot(make_request(nova_api, flavors, batch="hermes-other000", count=1, pool="pool-b"))
    other = make_driver(nova_api, name="hermes-2")
    theirs = other.boot(
        make_request(
            nova_api, flavors, batch="hermes-2-0000000", count=1, tags={TAG_POOL: POOL, TAG_CLOUD: "hermes-2"}
        )
    )
    driver.conn.compute.create_server(
        name="not-csctl", flavor_id=flavors["tiny"].id, image_id=nova_api.image_id, networks="none"
    )
    calls = Calls(driver)

    listed = driver.list_instances(POOL)

    assert calls.requests == ["GET /servers/detail"]
    assert ids(listed) == ids(booted)
    assert ids(other.list_instances(POOL)) == ids(theirs)
    assert driver.list_instances("nobody") == []


def test_list_of_a_renamed_server(nova_api: Any, flavors: Any, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(nova_api, flavors, count=1))
    driver.conn.compute.update_server(vm.provider_id, name="renamed")

    (listed,) = driver.list_instances(POOL)

    assert listed.csctl_id == f"{BATCH}-{vm.provider_id}"


# -- terminate, console, quota ---------------------------------------------------


def test_terminate_deletes_each_server(nova_api: Any, flavors: Any, driver: Driver) -> None:
    a, b, c = sorted(driver.boot(make_request(nova_api, flavors, count=3)), key=lambda vm: vm.csctl_id)
    calls = Calls(driver)

    accepted = driver.terminate([a, c])

    assert calls.requests == ["DELETE /servers/{id}", "DELETE /servers/{id}"]  # Nova has no bulk delete
    assert accepted == [a.csctl_id, c.csctl_id]
    wait_for(
        driver, lambda vms: [vm.csctl_id for vm in vms if vm.state is not VMState.DELETED] == [b.csctl_id]
    )


def test_terminate_treats_vanished_servers_as_gone(nova_api: Any, flavors: Any, driver: Driver) -> None:
    ghost = Instance(f"{BATCH}-9", CLOUD, "pandacernvm", VMState.RUNNING, str(uuid.uuid4()))

    assert driver.terminate([ghost]) == [ghost.csctl_id]


def test_terminate_goes_on_past_a_failing_server(nova_api: Any, flavors: Any, driver: Driver) -> None:
    a, b = sorted(driver.boot(make_request(nova_api, flavors, count=2)), key=lambda vm: vm.csctl_id)
    inject(driver, "DELETE", a.provider_id, 409, "Instance is locked")

    assert driver.terminate([a, b]) == [b.csctl_id]

    with pytest.raises(
        CloudBackendError, match=f"delete server {a.provider_id} failed: 409: Instance is locked"
    ):
        driver.terminate([a])


def test_terminate_stops_at_an_auth_error(nova_api: Any, flavors: Any, driver: Driver) -> None:
    vms = driver.boot(make_request(nova_api, flavors, count=2))
    inject(driver, "DELETE", "/servers/", 401, "The request you have made requires authentication.")
    calls = Calls(driver)

    with pytest.raises(CloudAuthError):
        driver.terminate(vms)

    assert calls.requests == ["DELETE /servers/{id}"]


# -- the joined metadata ---------------------------------------------------------

JOINED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def boot_active(driver: Driver, request: BootRequest) -> list[Instance]:
    """Boot and wait until every server is ACTIVE: Nova refuses metadata while building
    (409), and a VM whose startd joined is active anyway."""
    started = driver.boot(request)
    wait_for(driver, lambda vms: {vm.state for vm in vms} == {VMState.RUNNING})
    return sorted(started, key=lambda vm: vm.csctl_id)


def test_mark_joined_sets_metadata_and_list_reads_it(nova_api: Any, flavors: Any, driver: Driver) -> None:
    a, b, c = boot_active(driver, make_request(nova_api, flavors, count=3))
    assert {vm.joined_at for vm in driver.list_instances(POOL)} == {None}
    calls = Calls(driver)

    marked = driver.mark_joined([a, c], JOINED)

    assert calls.requests == ["POST /servers/{id}/metadata", "POST /servers/{id}/metadata"]
    assert calls.bodies == [{"metadata": {TAG_JOINED: "2026-03-04T05:06:07Z"}}] * 2
    assert marked == [a.csctl_id, c.csctl_id]
    joined = {vm.csctl_id: vm.joined_at for vm in driver.list_instances(POOL)}
    assert joined == {a.csctl_id: JOINED, b.csctl_id: None, c.csctl_id: JOINED}
    # the batch's own metadata is left alone
    server = driver.conn.compute.get_server(a.provider_id)
    assert server.metadata[TAG_BATCH] == BATCH and server.metadata[TAG_JOINED] == "2026-03-04T05:06:07Z"


@pytest.mark.parametrize("value", ["not a time", "2026-13-45T99:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_joined_metadata_that_is_not_a_time_reads_as_none(
    nova_api: Any, flavors: Any, driver: Driver, value: str
) -> None:
    (vm,) = boot_active(driver, make_request(nova_api, flavors, count=1))
    driver.conn.compute.set_server_metadata(vm.provider_id, **{TAG_JOINED: value})

    (listed,) = driver.list_instances(POOL)

    assert (listed.csctl_id, listed.joined_at) == (vm.csctl_id, None)


def test_mark_joined_skips_vanished_servers(nova_api: Any, flavors: Any, driver: Driver) -> None:
    (vm,) = boot_active(driver, make_request(nova_api, flavors, count=1))
    ghost = Instance(f"{BATCH}-9", CLOUD, "pandacernvm", VMState.RUNNING, str(uuid.uuid4()))

    assert driver.mark_joined([ghost, vm], JOINED) == [vm.csctl_id]
    assert [i.joined_at for i in driver.list_instances(POOL)] == [JOINED]


def test_mark_joined_goes_on_past_a_failing_server(nova_api: Any, flavors: Any, driver: Driver) -> None:
    a, b = boot_active(driver, make_request(nova_api, flavors, count=2))
    inject(driver, "POST", f"{a.provider_id}/metadata", 409, "Cannot 'update metadata' while it is locked")

    assert driver.mark_joined([a, b], JOINED) == [b.csctl_id]

    with pytest.raises(CloudBackendError, match=f"set metadata of server {a.provider_id} failed: 409"):
        driver.mark_joined([a], JOINED)


def test_mark_joined_stops_at_an_auth_error(nova_api: Any, flavors: Any, driver: Driver) -> None:
    vms = boot_active(driver, make_request(nova_api, flavors, count=2))
    inject(driver, "POST", "/metadata", 403, "Policy doesn't allow os_compute_api:server-metadata:create")
    calls = Calls(driver)

    with pytest.raises(CloudAuthError):
        driver.mark_joined(vms, JOINED)

    assert calls.requests == ["POST /servers/{id}/metadata"]


def test_console_output(nova_api: Any, flavors: Any, driver: Driver) -> None:
    (vm,) = driver.boot(make_request(nova_api, flavors, count=1))
    assert driver.console_output(vm) == ""  # still building: Nova says 409, not ready

    wait_for(driver, lambda vms: vms[0].state is VMState.RUNNING)

    assert "FAKE CONSOLE OUTPUT" in driver.console_output(vm)


def test_console_output_of_an_unknown_server(driver: Driver) -> None:
    ghost = Instance(f"{BATCH}-0", CLOUD, "t", VMState.RUNNING, str(uuid.UUID(int=3)))

    with pytest.raises(CloudNotFound) as err:
        driver.console_output(ghost)

    assert err.value.message == (
        f"cloud hermes: console output of {ghost.provider_id} failed: 404: "
        f"Instance {ghost.provider_id} could not be found."
    )


def test_quota_is_the_limits_minus_usage(nova_api: Any, flavors: Any, driver: Driver, project: str) -> None:
    nova_api.set_quota(project, instances=10, cores=-1, ram=4096)
    driver.boot(make_request(nova_api, flavors, count=3))
    # Nova counts a server once it is scheduled (so does a production Nova).
    wait_for(driver, lambda vms: {vm.state for vm in vms} == {VMState.RUNNING})
    calls = Calls(driver)

    assert driver.quota() == Quota(instances=7, cores=None, memory_mb=4096 - 3 * 64)
    assert calls.requests == ["GET /limits"]


def test_quota_when_the_limits_cannot_be_read(driver: Driver) -> None:
    # the error goes up: the snapshot names it and treats the quota as unknown
    inject(driver, "GET", "/limits", 500, "boom")
    with pytest.raises(CloudBackendError) as err:
        driver.quota()
    assert err.value.message.startswith("cloud hermes: get limits failed: 500")


# -- errors ----------------------------------------------------------------------

MAPPING = [
    (401, "The request you have made requires authentication.", CloudAuthError),
    (403, "Policy doesn't allow os_compute_api:servers:create to be performed.", CloudAuthError),
    (403, "Quota exceeded for cores: Requested 8, but already used 16 of 20 cores", CloudQuotaError),
    (403, "Maximum number of ports exceeded", CloudQuotaError),
    (400, "Invalid input for field/attribute networks.", CloudBadRequest),
    (404, "Flavor 42 could not be found.", CloudNotFound),
    (409, "Conflict", CloudBackendError),
    (413, "Over limit", CloudQuotaError),
    (429, "Too many requests", CloudQuotaError),
    (500, "Unexpected API Error.\nPlease contact the administrator", CloudBackendError),
    (503, "Service Unavailable", CloudBackendError),
]


@pytest.mark.parametrize(("status", "message", "kind"), MAPPING)
def test_http_errors_are_translated(
    nova_api: Any, flavors: Any, driver: Driver, status: int, message: str, kind: type[CloudError]
) -> None:
    inject(driver, "POST", "/servers$", status, message)

    with pytest.raises(kind) as err:
        driver.boot(make_request(nova_api, flavors))

    assert type(err.value) is kind
    assert err.value.message == f"cloud hermes: create server failed: {status}: {' '.join(message.split())}"


def test_long_provider_messages_are_cut(nova_api: Any, flavors: Any, driver: Driver) -> None:
    inject(driver, "POST", "/servers$", 400, "Invalid input: " + "eHh4" * 1000)

    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors))

    assert len(err.value.message) < 400 and err.value.message.endswith("…")


def test_cloud_missing_from_clouds_yaml(nova_api: Any, clouds_yaml: Any) -> None:
    clouds_yaml({"other": {"auth_type": "none", "compute_endpoint_override": nova_api.endpoint}})
    driver = make_driver(nova_api, cloud="nosuch")

    with pytest.raises(CloudAuthError) as err:
        driver.list_instances(POOL)

    assert err.value.message == "cloud hermes: clouds.yaml entry 'nosuch': Cloud nosuch was not found."
    assert err.value.hint is not None and err.value.hint.startswith("check the 'nosuch' entry of clouds.yaml")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoint_down(nova_api: Any, clouds_yaml: Any) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v2.1/{uuid.uuid4().hex}"
    clouds_yaml({"testbed": {"auth_type": "none", "compute_endpoint_override": url}})
    driver = make_driver(nova_api)

    with pytest.raises(CloudTimeout) as err:
        driver.list_instances(POOL)

    assert err.value.message.startswith(
        f"cloud hermes: list servers failed: Unable to find a version discovery document at {url}, "
        "the service is unavailable or misconfigured."
    )
    assert err.value.hint == "check that the endpoints of clouds.yaml entry 'testbed' are reachable"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_endpoint_that_never_answers(nova_api: Any, clouds_yaml: Any, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/v2.1/{uuid.uuid4().hex}"
    clouds_yaml({"testbed": {"auth_type": "none", "compute_endpoint_override": url}})
    driver = make_driver(nova_api, api_timeout=0.3)

    start = time.monotonic()
    with pytest.raises(CloudTimeout):
        driver.list_instances(POOL)

    assert time.monotonic() - start < 5


def test_connection_lost_after_connecting(driver: Driver) -> None:
    driver.list_instances(POOL)  # discovery done: the endpoint answered once
    inject(driver, "GET", "/servers/detail", raises=requests.ConnectionError("Connection refused"))

    with pytest.raises(CloudTimeout, match="list servers failed: Unable to establish connection to"):
        driver.list_instances(POOL)


@pytest.mark.parametrize(
    ("in_yaml", "setting", "timeout"), [(None, None, 60.0), (7, None, 7.0), (7, 3.0, 3.0)]
)
def test_api_timeout(
    nova_api: Any, clouds_yaml: Any, in_yaml: float | None, setting: float | None, timeout: float
) -> None:
    entry: dict[str, Any] = {"auth_type": "none", "compute_endpoint_override": nova_api.endpoint}
    if in_yaml is not None:
        entry["api_timeout"] = in_yaml
    clouds_yaml({"testbed": entry})

    assert make_driver(nova_api, api_timeout=setting).conn.session.timeout == timeout


# -- configuration and packaging -------------------------------------------------


def test_driver_from_the_configuration(nova_api: Any, testbed_cloud: str) -> None:
    from csctl.clouds.registry import make_cloud
    from csctl.config import parse_config

    config = parse_config(
        '[pool]\nname = "pool.test"\ncollector = "127.0.0.1:9618"\n'
        f'[clouds.hermes]\ndriver = "openstack"\ncloud = "{testbed_cloud}"\n'
        f'network = "{nova_api.network_id}"\n'
    )

    cloud = make_cloud("hermes", config.clouds["hermes"])

    assert isinstance(cloud, Driver)
    assert (cloud.metadata_service, cloud.user_data_limit) == ("openstack", 49149)
    assert cloud.list_instances(POOL) == []


def test_openstacksdk_is_imported_only_on_first_use() -> None:
    code = (
        "import sys\n"
        "from csctl.clouds.openstack import Driver, Settings\n"
        "Driver('x', Settings(cloud='c'))\n"
        "assert 'openstack' not in sys.modules and 'keystoneauth1' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_driver_around_a_given_connection(nova_api: Any, project: str) -> None:
    driver = Driver(CLOUD, Settings(cloud="unused"), connection=nova_api.connect(project))
    assert driver.list_instances(POOL) == []
