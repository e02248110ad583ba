"""OpenStack driver: openstacksdk's ``conn.compute`` proxy, credentials from clouds.yaml.

One boot is one ``POST /servers`` with min_count=1 and max_count=count. Nova starts as
many servers as the quota allows and names them ``<batch>-1`` .. ``<batch>-N`` (a lone
server keeps the plain batch name); that suffix is the launch index + 1, and the launch
index is what each VM reads from its metadata service (``launch_index`` in
meta_data.json). The API shows ``OS-EXT-SRV-ATTR:launch_index`` to admins only, so the
csctl id is derived from the ``csctl-batch`` metadata and the server name.

openstacksdk is imported on first use only, and every openstacksdk, keystoneauth and
requests exception is translated into a ``csctl.errors.CloudError`` subclass here.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from csctl.errors import (
    CloudAuthError,
    CloudBackendError,
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudQuotaError,
    CloudTimeout,
)
from csctl.model import TAG_BATCH, TAG_CLOUD, TAG_POOL, TAG_TYPE, BootRequest, Instance, Quota, VMState, vm_id

log = logging.getLogger(__name__)

TAG_IMAGE = "csctl-image"  # metadata: the image the batch was booted from, as configured

# Nova's API schema caps the base64 text of user_data at 65535 characters (maxLength in
# nova/api/openstack/compute/schemas/servers.py); base64 turns 3 bytes into 4 characters.
NOVA_USER_DATA_MAX = 65535
USER_DATA_LIMIT = NOVA_USER_DATA_MAX // 4 * 3  # 49149 bytes before base64
DEFAULT_API_TIMEOUT = 60.0  # seconds, where neither csctl nor clouds.yaml set api_timeout

_STATES = {
    "BUILD": VMState.BOOTING,
    "REBUILD": VMState.BOOTING,
    "REBOOT": VMState.BOOTING,
    "HARD_REBOOT": VMState.BOOTING,
    "ACTIVE": VMState.RUNNING,
    "PASSWORD": VMState.RUNNING,
    "MIGRATING": VMState.RUNNING,
    "RESIZE": VMState.RUNNING,
    "VERIFY_RESIZE": VMState.RUNNING,
    "REVERT_RESIZE": VMState.RUNNING,
    "SHUTOFF": VMState.STOPPED,
    "SUSPENDED": VMState.STOPPED,
    "PAUSED": VMState.STOPPED,
    "RESCUE": VMState.STOPPED,
    "SHELVED": VMState.STOPPED,
    "SHELVED_OFFLOADED": VMState.STOPPED,
    "DELETED": VMState.DELETED,
    "SOFT_DELETED": VMState.DELETED,
}  # ERROR, UNKNOWN and anything new: VMState.ERROR

_UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
# Nova says 403 for quota ("Quota exceeded for instances: ...") and for port limits
# ("Maximum number of ports exceeded"); other 403s are policy refusals.
_QUOTA_403 = re.compile(r"quota|exceeded", re.IGNORECASE)
_REGEX_SPECIALS = re.compile(r"([.^$*+?()\[\]{}|\\])")
_MESSAGE_MAX = 300


class Settings(BaseModel):
    """Keys of a ``driver = "openstack"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud: str = Field(min_length=1, description="entry in clouds.yaml")
    network: str | None = None
    key_name: str | None = None
    security_groups: list[str] = Field(default_factory=list)
    availability_zone: str | None = None
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
    api_timeout: float | None = Field(
        None, gt=0, description="seconds per API request; unset: clouds.yaml's api_timeout, else 60"
    )


class Driver:
    """One configured OpenStack cloud: a clouds.yaml entry plus network and boot options."""

    metadata_service = "openstack"  # VMs read launch_index from meta_data.json
    user_data_limit = USER_DATA_LIMIT

    def __init__(self, name: str, settings: Settings, connection: Any = None) -> None:
        """``connection``: an openstacksdk Connection to use instead of the clouds.yaml entry."""
        self.name = name
        self.settings = settings
        self.private_network = settings.private_network
        if connection is not None:
            self.conn = connection

    @cached_property
    def conn(self) -> Any:
        """The openstacksdk Connection of the clouds.yaml entry, created on first use."""
        with self._api("connect"):
            return self._connect()

    def list_instances(self, pool: str) -> list[Instance]:
        """Every server with metadata ``csctl-pool = pool`` and ``csctl-cloud = <this cloud>``.

        One paginated ``GET /servers/detail``; Nova cannot filter on metadata, so the
        filtering happens here (two clouds may share a project).
        """
        with self._api("list servers"):
            servers = list(self.conn.compute.servers(details=True))
        mine = [s for s in servers if _owned(s, pool, self.name)]
        return [self._instance(s) for s in mine]

    def boot(self, request: BootRequest) -> list[Instance]:
        """Boot up to ``request.count`` servers in one create call (min_count=1).

        Image and network names cost one lookup each, a flavor one or two; then the batch
        is listed once by name to return the servers Nova started, possibly fewer than
        asked. Servers that fail to schedule (NoValidHost) are returned in state ERROR:
        the create call itself succeeded. Spot prices do not exist on OpenStack.
        """
        self._check_request(request)
        if request.max_price is not None:
            log.debug("%s: batch %s: no spot market on OpenStack, price ignored", self.name, request.batch_id)
        params = self._create_params(request)
        with self._api("create server"):
            first = self.conn.compute.create_server(**params)
        started = self._batch(request.batch_id, first.id)
        log.debug("%s: batch %s: %d of %d started", self.name, request.batch_id, len(started), request.count)
        return started

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        """Delete the servers; return the csctl ids Nova accepted.

        Nova has no bulk delete: this is one ``DELETE /servers/<id>`` per VM. A server
        Nova no longer knows counts as deleted. A failure on one server is logged and the
        others are still deleted; an auth or connection failure stops the loop. Raises
        only when no server was accepted.
        """
        done: list[str] = []
        failures: list[CloudError] = []
        for vm in instances:
            try:
                self._delete(vm)
            except CloudError as exc:
                failures.append(exc)
                if _fatal(exc):
                    break
                continue
            done.append(vm.csctl_id)
        if failures and not done:
            raise failures[0]
        for failure in failures:
            log.warning("%s", failure.message)
        return done

    def console_output(self, instance: Instance) -> str:
        """The server's console log; "" while it has none (building, or no console)."""
        from openstack import exceptions as sdk

        with self._api(f"console output of {instance.provider_id}"):
            try:
                answer = self.conn.compute.get_server_console_output(instance.provider_id)
            except sdk.HttpException as exc:
                if _missing_server(exc, instance.provider_id):
                    raise
                log.debug("%s: no console output for %s: %s", self.name, instance.provider_id, exc.details)
                return ""
        return str(answer.get("output") or "")

    def quota(self) -> Quota:
        """Room left in the project's compute limits (all its servers, not only csctl's).

        ``Quota()`` when the limits cannot be read; None where a limit is unlimited.
        """
        try:
            with self._api("get limits"):
                absolute = self.conn.compute.get_limits().absolute
        except CloudError as exc:
            log.warning("%s", exc.message)
            return Quota()
        return Quota(
            instances=_room(absolute.instances, absolute.instances_used),
            cores=_room(absolute.total_cores, absolute.total_cores_used),
            memory_mb=_room(absolute.total_ram, absolute.total_ram_used),
        )

    # -- helpers -----------------------------------------------------------------

    def _connect(self) -> Any:
        import openstack
        import openstack.config

        from csctl import __version__

        region = openstack.config.get_cloud_region(
            cloud=self.settings.cloud,
            app_name="csctl",
            app_version=__version__,
            api_timeout=self.settings.api_timeout,  # None: clouds.yaml's value stands
        )
        if region.config.get("api_timeout") is None:
            region.config["api_timeout"] = DEFAULT_API_TIMEOUT  # never hang a cron run forever
        return openstack.connection.Connection(config=region)

    def _check_request(self, request: BootRequest) -> None:
        """Refuse, before any API call, what Nova would refuse or csctl could not find again."""
        problem = _request_problem(request)
        if problem:
            raise CloudBadRequest(self.name, f"batch {request.batch_id}: {problem}")

    def _create_params(self, request: BootRequest) -> dict[str, Any]:
        assert request.flavor is not None  # _check_request
        params: dict[str, Any] = {
            "name": request.batch_id,
            "image_id": self._image_id(request.image),
            "flavor_id": self._flavor_id(request.flavor),
            "networks": self._networks(),
            "min_count": 1,
            "max_count": request.count,
            "metadata": self._metadata(request),
        }
        if request.user_data:
            params["user_data"] = base64.b64encode(request.user_data).decode("ascii")
        return {**params, **self._placement_params()}

    def _metadata(self, request: BootRequest) -> dict[str, str]:
        """The batch's metadata: the request's tags, with the batch id csctl lists it by."""
        metadata = {TAG_TYPE: request.vm_type, TAG_CLOUD: self.name, **request.tags}
        # The image as configured (maybe a name): Nova reports only the id it resolved to.
        return {**metadata, TAG_BATCH: request.batch_id, TAG_IMAGE: request.image}

    def _placement_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.settings.key_name:
            params["key_name"] = self.settings.key_name
        if self.settings.security_groups:
            params["security_groups"] = [{"name": group} for group in self.settings.security_groups]
        if self.settings.availability_zone:
            params["availability_zone"] = self.settings.availability_zone
        return params

    def _image_id(self, image: str) -> str:
        """An image id as given; a name looked up with one ``GET /images?name=``.

        Nova's image API (a proxy to glance) is deprecated but still served at microversion
        2.1, which the SDK uses for it; it keeps this driver on ``conn.compute`` alone.
        """
        if _UUID.fullmatch(image):
            return image
        with self._api(f"find image {image}"):
            listed = self.conn.compute.images(details=False, name=image)
            found = [i.id for i in listed if i.name == image]  # not every glance filters by name
        return self._one("image", image, found)

    def _flavor_id(self, flavor: str) -> str:
        """A flavor id, from an id (one GET) or a name (a GET, then the flavor list)."""
        from openstack import exceptions as sdk

        with self._api(f"find flavor {flavor}"):
            try:
                return str(self.conn.compute.find_flavor(flavor, ignore_missing=False).id)
            except sdk.NotFoundException:
                raise CloudBadRequest(self.name, f"no flavor named '{flavor}'") from None

    def _networks(self) -> Any:
        """The configured network as Nova wants it; "auto" lets Nova pick or allocate one.

        A network name is looked up in neutron (``conn.network``), one request.
        """
        network = self.settings.network
        if not network:
            return "auto"
        if _UUID.fullmatch(network):
            return [{"uuid": network}]
        with self._api(f"find network {network}"):
            found = [n.id for n in self.conn.network.networks(name=network) if n.name == network]
        return [{"uuid": self._one("network", network, found)}]

    def _one(self, kind: str, name: str, found: Sequence[str]) -> str:
        if len(found) == 1:
            return str(found[0])
        if not found:
            raise CloudBadRequest(self.name, f"no {kind} named '{name}'")
        raise CloudBadRequest(self.name, f"{len(found)} {kind}s named '{name}': configure its id instead")

    def _batch(self, batch_id: str, first_id: str) -> list[Instance]:
        """The servers of a batch just created, listed once by name.

        If that list fails, the servers exist all the same: report the one the create
        call named rather than an error that would make the caller boot again.
        """
        name = f"^{_regex_escape(batch_id)}(-[0-9]+)?$"
        try:
            with self._api("list servers"):
                servers = list(self.conn.compute.servers(details=True, name=name))
        except CloudError as exc:
            log.warning("%s (batch %s was created: the next list shows it)", exc.message, batch_id)
            return [Instance(vm_id(batch_id, 0), self.name, "", VMState.BOOTING, first_id)]
        mine = [s for s in servers if (s.metadata or {}).get(TAG_BATCH) == batch_id]
        return [self._instance(s) for s in mine]

    def _instance(self, server: Any) -> Instance:
        metadata: Mapping[str, str] = server.metadata or {}
        state = _STATES.get(str(server.status).upper(), VMState.ERROR)
        return Instance(
            csctl_id=self._csctl_id(server, metadata[TAG_BATCH]),
            cloud=metadata.get(TAG_CLOUD, self.name),
            vm_type=metadata.get(TAG_TYPE, ""),
            state=state,
            provider_id=server.id,
            booted_at=_timestamp(server.created_at),
            address=_fixed_address(server.addresses or {}),
            fault=_fault(server.fault, state),
            image=metadata.get(TAG_IMAGE),
        )

    def _csctl_id(self, server: Any, batch: str) -> str:
        index = _launch_index(server.name, batch)
        if index is None:
            # Renamed by someone: its launch index is lost, but csctl must still see it.
            log.warning(
                "%s: server %s (%s) renamed: listed by its server id", self.name, server.id, server.name
            )
            return f"{batch}-{server.id}"
        return vm_id(batch, index)

    def _delete(self, vm: Instance) -> None:
        with self._api(f"delete server {vm.provider_id}"):
            self.conn.compute.delete_server(vm.provider_id, ignore_missing=True)  # 404: gone already

    @contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Translate openstacksdk, keystoneauth and requests exceptions into CloudErrors."""
        import requests
        from keystoneauth1.exceptions import ClientException
        from openstack.exceptions import SDKException

        try:
            yield
        except (SDKException, ClientException, requests.RequestException) as exc:
            raise self._translate(exc, action) from exc

    def _translate(self, exc: Exception, action: str) -> CloudError:
        from openstack import exceptions as sdk

        if isinstance(exc, sdk.ConfigException):
            message = f"clouds.yaml entry '{self.settings.cloud}': {_one_line(str(exc))}"
            return CloudAuthError(self.name, message, self._config_hint())
        if isinstance(exc, sdk.HttpException) and exc.status_code is not None:
            return self._translate_http(exc.status_code, _http_detail(exc), action)
        message = f"{action} failed: {_one_line(str(exc))}"
        kind = _exception_kind(exc)
        return kind(self.name, message, self._hint(kind))

    def _translate_http(self, status: int, detail: str, action: str) -> CloudError:
        kind = _status_kind(status, detail)
        return kind(self.name, f"{action} failed: {status}: {detail}", self._hint(kind))

    def _hint(self, kind: type[CloudError]) -> str | None:
        if kind is CloudAuthError:
            return self._config_hint()
        if kind is CloudQuotaError:
            return "ask for fewer VMs or a smaller flavor, or raise the project's quota"
        if kind is CloudTimeout:
            return f"check that the endpoints of clouds.yaml entry '{self.settings.cloud}' are reachable"
        return None

    def _config_hint(self) -> str:
        return (
            f"check the '{self.settings.cloud}' entry of clouds.yaml "
            "($OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/ or /etc/openstack/)"
        )


def _owned(server: Any, pool: str, cloud: str) -> bool:
    metadata: Mapping[str, str] = server.metadata or {}
    return metadata.get(TAG_POOL) == pool and metadata.get(TAG_CLOUD) == cloud and TAG_BATCH in metadata


def _launch_index(name: str, batch: str) -> int | None:
    """0 for a lone server named ``batch``; i-1 for ``batch-i`` of a multi-create."""
    if name == batch:
        return 0
    prefix, _, suffix = name.rpartition("-")
    if prefix == batch and suffix.isdigit() and int(suffix) >= 1:
        return int(suffix) - 1
    return None


def _request_problem(request: BootRequest) -> str | None:
    if not request.flavor:
        return f"VM type {request.vm_type} has no flavor: OpenStack needs one"
    if request.count < 1:
        return f"asked for {request.count} VMs"
    if len(request.user_data) > USER_DATA_LIMIT:
        return (
            f"user-data is {len(request.user_data)} bytes, Nova allows at most {USER_DATA_LIMIT} "
            f"({NOVA_USER_DATA_MAX} in base64)"
        )
    if not request.tags.get(TAG_POOL):
        return f"no {TAG_POOL} tag: csctl could never find these VMs again"
    return None


def _status_kind(status: int, detail: str) -> type[CloudError]:
    if status == 403 and _QUOTA_403.search(detail):
        return CloudQuotaError
    if status in (401, 403):
        return CloudAuthError
    if status in (413, 429):  # rate limits
        return CloudQuotaError
    if status == 400:
        return CloudBadRequest
    if status == 404:
        return CloudNotFound
    return CloudBackendError


def _exception_kind(exc: Exception) -> type[CloudError]:
    import requests
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as sdk

    if isinstance(exc, ksa.SSLError):
        return CloudBackendError
    if isinstance(exc, ksa.HttpError) and exc.http_status in (401, 403):
        return CloudAuthError  # from keystone, while authenticating
    if isinstance(exc, ksa.AuthPluginException | ksa.AuthorizationFailure):
        return CloudAuthError
    if isinstance(exc, sdk.DuplicateResource):
        return CloudBadRequest
    if isinstance(exc, ksa.EndpointNotFound | sdk.EndpointNotFound):
        return CloudAuthError  # the entry's catalog or overrides lack a compute endpoint
    # DiscoveryFailure: keystoneauth's answer when an endpoint does not answer at all.
    timeouts = (ksa.ConnectionError, ksa.DiscoveryFailure, sdk.ResourceTimeout)
    if isinstance(exc, timeouts + (requests.ConnectionError, requests.Timeout)):
        return CloudTimeout
    return CloudBackendError


def _missing_server(exc: Any, server_id: str) -> bool:
    """Whether an error says the server itself is gone (not merely its console)."""
    return exc.status_code == 404 and server_id in str(exc.details or "")


def _fatal(exc: CloudError) -> bool:
    """Errors that would fail every further call the same way."""
    return isinstance(exc, CloudAuthError | CloudTimeout)


def _http_detail(exc: Any) -> str:
    return _one_line(str(exc.details or exc.message or "no details"))


def _one_line(text: str) -> str:
    """Whitespace collapsed, long provider blobs (Nova echoes rejected values) cut short."""
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _regex_escape(text: str) -> str:
    """``text`` as a literal in Nova's name regex; "-" stays bare for MySQL and PostgreSQL."""
    return _REGEX_SPECIALS.sub(r"\\\1", text)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _fixed_address(addresses: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """The first fixed IP address, IPv4 before IPv6."""
    fixed = [
        entry
        for entries in addresses.values()
        for entry in entries
        if entry.get("OS-EXT-IPS:type", "fixed") == "fixed"
    ]
    fixed.sort(key=lambda entry: entry.get("version", 4) != 4)
    return str(fixed[0]["addr"]) if fixed else None


def _fault(fault: Mapping[str, Any] | None, state: VMState) -> str | None:
    """Nova's fault message of a server in ERROR ("No valid host was found. ...")."""
    if state is not VMState.ERROR or not fault:
        return None
    message = _one_line(str(fault.get("message", "")))
    return message or None


def _room(limit: int | None, used: int | None) -> int | None:
    if limit is None or limit < 0:  # -1: unlimited
        return None
    return max(limit - (used or 0), 0)
