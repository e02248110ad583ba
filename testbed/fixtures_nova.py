"""pytest plugin: a real Nova compute API on loopback (fixture ``nova_api``).

The server is nova's own functional-test cloud (fake hypervisor, fake glance/neutron,
placement, conductor, scheduler) behind real HTTP, with keystone stubbed: talk to it
with openstacksdk exactly as to a production cloud, with ``auth_type="none"``.

Tests share one server per session; give each test its own project
(``nova_api.new_project()``) so quotas and server lists do not leak between tests.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from testbed.nova import NovaServer, ensure_venv

# An image the fake glance always has (nova.tests.fixtures.GlanceFixture.image1).
IMAGE_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"
# The fake neutron's network (nova.tests.fixtures.NeutronFixture.network_1).
NETWORK_ID = "3cb9bc59-5699-4588-a4b1-b87f96708bc6"
# Seconds a test's request may take; the server answers in well under one.
REQUEST_TIMEOUT = 60
_SERVER = pytest.StashKey["NovaServer"]()


class NovaAPI:
    """Handle on the session's Nova server, handed out by the ``nova_api`` fixture."""

    image_id = IMAGE_ID
    network_id = NETWORK_ID

    def __init__(self, server: NovaServer) -> None:
        self.server = server

    @property
    def endpoint(self) -> str:
        """Member endpoint of the default project (``http://127.0.0.1:PORT/v2.1``)."""
        assert self.server.endpoint is not None
        return self.server.endpoint

    @staticmethod
    def new_project() -> str:
        """A fresh project id (nova only routes hex ids); projects need no creating."""
        return uuid.uuid4().hex

    def endpoint_for(self, project_id: str | None = None, admin: bool = False) -> str:
        """Compute endpoint acting as a member (or admin) of project_id."""
        return self.server.endpoint_for(project_id, admin=admin)

    def connect(self, project_id: str | None = None, admin: bool = False) -> Any:
        """An ``openstack.connection.Connection`` to this server (auth_type none).

        admin=True acts with the admin role in project_id: flavors, quotas, and the
        admin-only server fields such as ``user_data``.
        """
        import openstack  # the plugin must load even where openstacksdk is absent

        return openstack.connect(
            auth_type="none",
            compute_endpoint_override=self.endpoint_for(project_id, admin=admin),
            load_yaml_config=False,  # ignore the developer's clouds.yaml and OS_* vars
            load_envvars=False,
            api_timeout=REQUEST_TIMEOUT,  # a server that stops answering fails the test
        )

    def set_quota(self, project_id: str, **limits: int) -> Any:
        """Set compute quotas of project_id (e.g. ``instances=2``); return the quota set."""
        return self.connect(project_id, admin=True).compute.update_quota_set(project_id, **limits)

    def user_data(self, server_id: str, project_id: str | None = None) -> bytes | None:
        """The user data a server was booted with, decoded, or None if it had none.

        Nova shows it as base64 in ``OS-EXT-SRV-ATTR:user_data`` to admins at
        microversion >= 2.3; openstacksdk maps that to ``Server.user_data``.
        """
        conn = self.connect(project_id, admin=True)
        encoded = conn.compute.get_server(server_id).user_data
        return base64.b64decode(encoded) if encoded else None


@pytest.fixture(scope="session")
def nova_api(request: pytest.FixtureRequest) -> Iterator[NovaAPI]:
    """A running Nova API server for the whole session (built on first use)."""
    python = ensure_venv()
    with NovaServer(python=python) as server:
        request.config.stash[_SERVER] = server
        try:
            yield NovaAPI(server)
        finally:
            del request.config.stash[_SERVER]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test that used the Nova server reports the server's threads and log.

    A server that stops answering is otherwise a bare timeout; its threads' stacks show
    where it waits.
    """
    report = yield
    server = item.config.stash.get(_SERVER, None)
    if report.failed and server is not None and "nova_api" in getattr(item, "fixturenames", ()):
        report.sections.append(("nova server: threads and log", server.dump_threads()))
    return report
