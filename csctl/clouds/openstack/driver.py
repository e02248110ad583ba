"""The OpenStack ``Driver``: one clouds.yaml entry driven through ``conn.compute``."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cached_property
from typing import Any

from csctl.clouds.base import joined_tag
from csctl.clouds.openstack.errors import fatal, missing_server, translated
from csctl.clouds.openstack.servers import batch_name_filter, owned, room, to_instance
from csctl.clouds.openstack.settings import (
    DEFAULT_API_TIMEOUT,
    NOVA_USER_DATA_MAX,
    TAG_IMAGE,
    USER_DATA_LIMIT,
    Settings,
)
from csctl.errors import CloudBadRequest, CloudError
from csctl.model import (
    TAG_BATCH,
    TAG_CLOUD,
    TAG_JOINED,
    TAG_POOL,
    TAG_SOURCE_URL,
    TAG_TYPE,
    BootRequest,
    Instance,
    Quota,
    VMState,
    vm_id,
)

log = logging.getLogger(__name__)

_UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")


class Driver:
    """One configured OpenStack cloud: a clouds.yaml entry plus network and boot options."""

    metadata_service = "openstack"  # VMs read launch_index from meta_data.json
    user_data_limit = USER_DATA_LIMIT

    def __init__(self, name: str, settings: Settings, connection: Any = None) -> None:
        """``connection``: an openstacksdk Connection to use instead of the clouds.yaml entry."""
        self.name = name
        self.settings = settings
        self.private_network = settings.private_network
        self.zones: tuple[str, ...] = ()  # one availability_zone at most: Nova places the rest
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
        mine = [s for s in servers if owned(s, pool, self.name)]
        return [to_instance(s, self.name) for s in mine]

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
        return self._each(instances, self._delete)

    def mark_joined(self, instances: Sequence[Instance], when: datetime) -> list[str]:
        """Set metadata ``csctl-joined = when`` on each server; return the csctl ids marked.

        Nova has no bulk metadata call: one ``POST /servers/<id>/metadata`` per VM, which
        leaves the other keys alone. A server Nova no longer knows is not marked; other
        failures (Nova says 409 while a server is still building) are handled as
        ``terminate`` handles them.
        """
        value = joined_tag(when)
        return self._each(instances, lambda vm: self._set_joined(vm, value))

    def console_output(self, instance: Instance) -> str:
        """The server's console log; "" while it has none (building, or no console)."""
        from openstack import exceptions as sdk

        with self._api(f"console output of {instance.provider_id}"):
            try:
                answer = self.conn.compute.get_server_console_output(instance.provider_id)
            except sdk.HttpException as exc:
                if missing_server(exc, instance.provider_id):
                    raise
                log.debug("%s: no console output for %s: %s", self.name, instance.provider_id, exc.details)
                return ""
        return str(answer.get("output") or "")

    def quota(self) -> Quota:
        """Room left in the project's compute limits (all its servers, not only csctl's).

        None where a limit is unlimited; a CloudError when the limits cannot be read (the
        snapshot reports it and places within the configured limits alone).
        """
        with self._api("get limits"):
            absolute = self.conn.compute.get_limits().absolute
        return Quota(
            instances=room(absolute.instances, absolute.instances_used),
            cores=room(absolute.total_cores, absolute.total_cores_used),
            memory_mb=room(absolute.total_ram, absolute.total_ram_used),
        )

    def find_image(self, url: str) -> str | None:
        """The image registered for the image URL ``url``: one named ``url`` (one ``GET
        /images?name=``), else one whose property ``csctl-source-url`` is ``url`` (the image
        list, paginated); the newest when several are."""
        with self._api(f"find image {url}"):
            found = [i for i in self.conn.compute.images(details=True, name=url) if i.name == url]
            if not found:
                images = self.conn.compute.images(details=True)
                found = [i for i in images if (i.metadata or {}).get(TAG_SOURCE_URL) == url]
        if not found:
            return None
        return str(max(found, key=lambda i: str(i.created_at or "")).id)

    def check_flavor(self, flavor: str, disk_gb: int) -> str | None:
        """Why ``flavor`` cannot hold a VM type's ``disk_gb`` root disk, or None when it can
        (or this cloud boots from a volume of that size). One or two flavor look-ups."""
        if self.settings.boot_from_volume:
            return None
        _, disk = self._flavor(flavor)
        return _disk_problem(flavor, disk, disk_gb)

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
        image_id = self._image_id(request.image)
        flavor_id, flavor_disk = self._flavor(request.flavor)
        params: dict[str, Any] = {
            "name": request.batch_id,
            "image_id": image_id,
            "flavor_id": flavor_id,
            "networks": self._networks(),
            "min_count": 1,
            "max_count": request.count,
            "metadata": self._metadata(request),
        }
        if self.settings.boot_from_volume and request.disk_gb:
            # the root disk is a new volume of the type's size, made from the image and
            # deleted with the server; Nova then takes no imageRef
            del params["image_id"]
            params["block_device_mapping"] = [_boot_volume(image_id, request.disk_gb)]
        elif request.disk_gb:
            problem = _disk_problem(request.flavor, flavor_disk, request.disk_gb)
            if problem:
                raise CloudBadRequest(self.name, f"VM type {request.vm_type}: {problem}")
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

    def _flavor(self, flavor: str) -> tuple[str, int | None]:
        """A flavor's id and root disk in GB, from an id (one GET) or a name (a GET, then
        the flavor list)."""
        from openstack import exceptions as sdk

        with self._api(f"find flavor {flavor}"):
            try:
                found = self.conn.compute.find_flavor(flavor, ignore_missing=False)
            except sdk.NotFoundException:
                raise CloudBadRequest(self.name, f"no flavor named '{flavor}'") from None
        return str(found.id), found.disk

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
        name = batch_name_filter(batch_id)
        try:
            with self._api("list servers"):
                servers = list(self.conn.compute.servers(details=True, name=name))
        except CloudError as exc:
            log.warning("%s (batch %s was created: the next list shows it)", exc.message, batch_id)
            return [Instance(vm_id(batch_id, 0), self.name, "", VMState.BOOTING, first_id)]
        mine = [s for s in servers if (s.metadata or {}).get(TAG_BATCH) == batch_id]
        return [to_instance(s, self.name) for s in mine]

    def _each(self, instances: Sequence[Instance], act: Callable[[Instance], bool | None]) -> list[str]:
        """``act`` on every instance; the csctl ids it did not refuse (False: server gone).

        A failure is logged and the loop goes on, but an auth or connection failure stops it.
        Raises the first failure only when no instance succeeded.
        """
        done: list[str] = []
        failures: list[CloudError] = []
        for vm in instances:
            try:
                if act(vm) is False:
                    continue
            except CloudError as exc:
                failures.append(exc)
                if fatal(exc):
                    break
                continue
            done.append(vm.csctl_id)
        if failures and not done:
            raise failures[0]
        for failure in failures:
            log.warning("%s", failure.message)
        return done

    def _delete(self, vm: Instance) -> None:
        with self._api(f"delete server {vm.provider_id}"):
            self.conn.compute.delete_server(vm.provider_id, ignore_missing=True)  # 404: gone already

    def _set_joined(self, vm: Instance, value: str) -> bool:
        """Mark one server; False when Nova no longer knows it."""
        from openstack import exceptions as sdk

        with self._api(f"set metadata of server {vm.provider_id}"):
            try:
                self.conn.compute.set_server_metadata(vm.provider_id, **{TAG_JOINED: value})
            except sdk.NotFoundException:
                log.debug("%s: server %s already gone, not marked", self.name, vm.provider_id)
                return False
        return True

    def _api(self, action: str) -> AbstractContextManager[None]:
        """API calls inside raise csctl CloudErrors only, whatever the SDKs raise."""
        return translated(self.name, self.settings, action)


def _disk_problem(flavor: str, disk: int | None, disk_gb: int) -> str | None:
    """Why a flavor with a ``disk`` GB root disk cannot hold ``disk_gb``. A disk of 0 is
    Nova's "as large as the image": it cannot be checked, and is let through."""
    if not disk or disk >= disk_gb:
        return None
    return (
        f"flavor {flavor} has a {disk} GB root disk, less than the VM type's {disk_gb} GB: "
        "choose a larger flavor, or set boot_from_volume = true on the cloud"
    )


def _boot_volume(image_id: str, disk_gb: int) -> dict[str, Any]:
    return {
        "boot_index": 0,
        "uuid": image_id,
        "source_type": "image",
        "destination_type": "volume",
        "volume_size": disk_gb,
        "delete_on_termination": True,
    }


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
