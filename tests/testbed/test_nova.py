"""The Nova test-bed peer behaves like a production Nova, as seen through openstacksdk.

Each test works in a project of its own, so quotas and server lists never leak.
"""

from __future__ import annotations

import base64
import os
import subprocess
import textwrap
import time
import uuid

import pytest

openstack = pytest.importorskip("openstack")
from openstack import exceptions as os_exc  # noqa: E402

from testbed.nova import SERVER_PY, ensure_venv  # noqa: E402

pytestmark = pytest.mark.nova

WAIT = 60  # seconds; the fake hypervisor spawns in ~0.5 s, so this is only a safety net
USER_DATA = b"#!/bin/sh\n# csctl startd payload\necho CONDOR_HOST=127.0.0.1\n"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def project(nova_api):
    """A fresh project id."""
    return nova_api.new_project()


@pytest.fixture
def conn(nova_api, project):
    """A member's connection to the test project."""
    return nova_api.connect(project)


@pytest.fixture
def admin(nova_api, project):
    """An admin's connection scoped to the test project."""
    return nova_api.connect(project, admin=True)


@pytest.fixture
def flavor(admin):
    """A small public flavor, created by the admin for this test."""
    flv = admin.compute.create_flavor(name=_unique("csctl.small"), ram=1024, vcpus=1, disk=10)
    yield flv
    admin.compute.delete_flavor(flv)


def _boot(conn, nova_api, flavor, name, count=1, **extra):
    """Boot `count` servers in one request, as csctl does."""
    return conn.compute.create_server(
        name=name,
        flavor_id=flavor.id,
        image_id=nova_api.image_id,
        networks=[{"uuid": nova_api.network_id}],
        min_count=count,
        max_count=count,
        **extra,
    )


def _named(conn, name):
    """Servers whose name is `name` or nova's multi-create `name-N`."""
    return list(conn.compute.servers(details=True, name=f"^{name}(-[0-9]+)?$"))


def _wait_active(conn, servers):
    return [conn.compute.wait_for_server(s, status="ACTIVE", interval=0.2, wait=WAIT) for s in servers]


def test_image_and_flavor_are_visible(nova_api, conn, flavor):
    image = conn.compute.get_image(nova_api.image_id)
    assert image.status == "ACTIVE"
    assert flavor.id in {f.id for f in conn.compute.flavors()}
    assert conn.compute.find_flavor(flavor.name).ram == 1024


def test_multi_boot_with_metadata_goes_build_then_active(nova_api, conn, flavor):
    name = _unique("vm")
    tag = _unique("group")
    user_data = base64.b64encode(USER_DATA).decode()
    _boot(
        conn, nova_api, flavor, name, count=3, metadata={"csctl_group": tag}, tags=[tag], user_data=user_data
    )

    servers = _named(conn, name)
    assert sorted(s.name for s in servers) == [f"{name}-1", f"{name}-2", f"{name}-3"]
    # The POST returns before the fake hypervisor has spawned anything.
    assert {s.status for s in servers} == {"BUILD"}
    assert all(s.metadata == {"csctl_group": tag} for s in servers)

    active = _wait_active(conn, servers)
    assert {s.status for s in active} == {"ACTIVE"}
    assert all(s.addresses["private"][0]["addr"] for s in active)  # the fake neutron's net
    # Nova cannot filter on metadata server-side: by tag it can, by metadata the client does.
    assert {s.id for s in conn.compute.servers(tags=tag)} == {s.id for s in servers}
    mine = [s for s in conn.compute.servers(details=True) if s.metadata.get("csctl_group") == tag]
    assert len(mine) == 3


def test_user_data_reads_back_for_admin_only(nova_api, conn, flavor, project):
    name = _unique("ud")
    server = _boot(conn, nova_api, flavor, name, user_data=base64.b64encode(USER_DATA).decode())
    _wait_active(conn, [server])

    assert nova_api.user_data(server.id) == USER_DATA
    admin_view = nova_api.connect(project, admin=True).compute.get_server(server.id)
    assert base64.b64decode(admin_view.user_data) == USER_DATA
    # A plain member never sees OS-EXT-SRV-ATTR:* fields, as on a production cloud.
    assert conn.compute.get_server(server.id).user_data is None


def test_console_output(nova_api, conn, flavor):
    server = _boot(conn, nova_api, flavor, _unique("console"))
    _wait_active(conn, [server])
    output = conn.compute.get_server_console_output(server)["output"]
    assert "FAKE CONSOLE OUTPUT" in output


def test_instance_quota_gives_403(nova_api, conn, flavor, project):
    quota = nova_api.set_quota(project, instances=2)
    assert quota.instances == 2
    assert conn.compute.get_quota_set(project).instances == 2

    with pytest.raises(os_exc.ForbiddenException) as err:
        _boot(conn, nova_api, flavor, _unique("over"), count=3)
    assert err.value.status_code == 403
    assert err.value.details == (
        "Quota exceeded for instances: Requested 3, but already used 0 of 2 instances"
    )
    assert isinstance(err.value, os_exc.HttpException)

    # min_count=1, max_count=5: nova boots as many as the quota allows, like production.
    name = _unique("fit")
    conn.compute.create_server(
        name=name,
        flavor_id=flavor.id,
        image_id=nova_api.image_id,
        networks="none",
        min_count=1,
        max_count=5,
    )
    assert len(_named(conn, name)) == 2


def test_flavor_larger_than_host_fails_with_no_valid_host(nova_api, conn, admin):
    # The fake hypervisor has 32768 MB of RAM; 40960 MB still fits the default quota.
    huge = admin.compute.create_flavor(name=_unique("csctl.huge"), ram=40960, vcpus=1, disk=10)
    try:
        server = conn.compute.create_server(
            name=_unique("novalid"),
            flavor_id=huge.id,
            image_id=nova_api.image_id,
            networks="none",
        )
        with pytest.raises(os_exc.ResourceFailure, match="transitioned to failure state ERROR"):
            conn.compute.wait_for_server(server, status="ACTIVE", interval=0.2, wait=WAIT)
        failed = conn.compute.get_server(server.id)
        assert failed.status == "ERROR"
        assert failed.fault["code"] == 500
        assert failed.fault["message"].startswith("No valid host was found.")
    finally:
        admin.compute.delete_flavor(huge)


def test_delete_servers(nova_api, conn, flavor):
    name = _unique("gone")
    _boot(conn, nova_api, flavor, name, count=2)
    servers = _wait_active(conn, _named(conn, name))
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, interval=0.2, wait=WAIT)
    # As in production, wait_for_delete also returns on status DELETED, which a server
    # shows for a moment before its record goes; then it is gone from lists and GETs.
    assert {s.status for s in _named(conn, name)} <= {"DELETED"}
    deadline = time.monotonic() + WAIT
    while _named(conn, name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _named(conn, name) == []
    with pytest.raises(os_exc.NotFoundException):
        conn.compute.get_server(servers[0].id)


def test_the_cell_lock_the_server_patches_in_is_the_one_nova_uses():
    # nova's own cell lock lets a waiting writer hold up new readers; served concurrently
    # that deadlocks the API (a GET that never answers). The server swaps in its own lock;
    # this proves the swap reaches the lock nova's CellDatabases fixture builds.
    script = textwrap.dedent(
        """
        import nova.tests.functional  # as the server does: picks the threading mode
        from nova.tests import fixtures as nova_fixtures
        import server

        with server.cell_lock_patch():
            inside = type(nova_fixtures.CellDatabases()._cell_lock).__name__
        outside = type(nova_fixtures.CellDatabases()._cell_lock).__name__
        print(inside, outside)
        """
    )
    env = {**os.environ, "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1", "PYTHONPATH": str(SERVER_PY.parent)}
    done = subprocess.run(
        [str(ensure_venv()), "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ReaderPreferringLock", "ReaderWriterLock"]
