"""The EC2 ``Driver``: one region (or EC2-compatible endpoint) driven through boto3."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from csctl.clouds.base import joined_tag
from csctl.clouds.ec2.errors import translated, unimplemented, unknown_image, unknown_instance_ids
from csctl.clouds.ec2.instances import (
    ACTIVE_STATES,
    LIVE_STATES,
    in_pool,
    pool_filters,
    state_of,
    to_instance,
)
from csctl.clouds.ec2.quota import max_instances, needs_instances
from csctl.clouds.ec2.settings import USER_DATA_LIMIT, Settings
from csctl.clouds.ec2.vcpus import vcpu_limits
from csctl.errors import CloudBadRequest, CloudError, CloudPriceError
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
)

log = logging.getLogger(__name__)

TERMINATE_CHUNK = 1000  # instance ids per TerminateInstances (and CreateTags) call


class Driver:
    """One configured EC2 (or EC2-compatible) cloud: region, credentials and network."""

    metadata_service = "ec2"  # VMs read ami-launch-index from the instance metadata
    user_data_limit = USER_DATA_LIMIT

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.private_network = settings.private_network
        self.zones = settings.zones
        self._root_devices: dict[str, tuple[str, int] | None] = {}  # image -> root device, its size

    @cached_property
    def client(self) -> Any:
        """The boto3 EC2 client, created on first use (so boto3 is imported only then)."""
        with self._api("connect"):
            return self._make_client("ec2", self.settings.endpoint_url)

    @cached_property
    def quotas_client(self) -> Any:
        """The boto3 Service Quotas client, for the vCPU limits (same credentials and timeouts)."""
        with self._api("connect"):
            return self._make_client("service-quotas", self.settings.service_quotas_endpoint_url)

    def list_instances(self, pool: str) -> list[Instance]:
        """Every live instance tagged ``csctl-pool = pool`` and ``csctl-cloud = <this cloud>``,
        in one paginated DescribeInstances (two clouds may share an account and region)."""
        return self._instances(self._describe(pool_filters(pool, self.name)))

    def boot(self, request: BootRequest) -> list[Instance]:
        """Boot up to ``request.count`` VMs in one RunInstances call (spot when priced).

        Returns the instances EC2 started, possibly fewer than asked. The request is
        checked before any API call: a missing instance type, an empty batch or
        user-data over 16 KB raise CloudBadRequest.
        """
        tags = self._boot_tags(request)
        params = self._run_params(request, tags)
        try:
            with self._api("RunInstances"):
                response = self.client.run_instances(**params)
        except CloudPriceError as exc:
            raise self._with_spot_price(exc, request) from exc
        started = [to_instance(raw, self.name, tags) for raw in response.get("Instances", [])]
        log.debug("%s: batch %s: %d of %d started", self.name, request.batch_id, len(started), request.count)
        return [vm for vm in started if vm is not None]

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        """Terminate the instances, 1000 ids per call; return the csctl ids EC2 accepted.

        Instances EC2 no longer knows are already gone: they count as accepted.
        """
        by_id = {vm.provider_id: vm.csctl_id for vm in instances}
        ids = list(by_id)
        done: list[str] = []
        for start in range(0, len(ids), TERMINATE_CHUNK):
            done += self._terminate_chunk(ids[start : start + TERMINATE_CHUNK])
        return [by_id[i] for i in done if i in by_id]

    def mark_joined(self, instances: Sequence[Instance], when: datetime) -> list[str]:
        """Tag the instances ``csctl-joined = when``, 1000 ids per CreateTags call; return the
        csctl ids tagged. Instances EC2 no longer knows are gone: they are not tagged."""
        by_id = {vm.provider_id: vm.csctl_id for vm in instances}
        ids = list(by_id)
        tags = [{"Key": TAG_JOINED, "Value": joined_tag(when)}]
        done: list[str] = []
        for start in range(0, len(ids), TERMINATE_CHUNK):
            done += self._tag_chunk(ids[start : start + TERMINATE_CHUNK], tags)
        return [by_id[i] for i in done]

    def console_output(self, instance: Instance) -> str:
        """The instance's console log (botocore decodes EC2's base64), "" when there is none."""
        with self._api("GetConsoleOutput"):
            response = self.client.get_console_output(InstanceId=instance.provider_id)
        output = response.get("Output") or ""
        return output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)

    def quota(self) -> Quota:
        """The account's ``max-instances`` minus its pending and running instances and,
        where the cloud reads them (``vcpu_quotas``), its vCPU limits from Service Quotas
        minus the vCPUs those instances hold, per group of instance families.

        Both count every instance of the account in the region, not only csctl's.
        ``Quota()`` where the cloud reports neither.
        """
        limit = max_instances(self.name, self.settings, self.client)
        if not needs_instances(limit, self.settings):
            return Quota()
        return self._room(limit, self._describe([_states(ACTIVE_STATES)]))

    def survey(self, pool: str) -> tuple[list[Instance], Quota]:
        """``list_instances(pool)`` and ``quota()`` from one DescribeInstances: where the quota
        counts the account's instances, one account-wide listing of the live states gives both
        (csctl's instances picked by their tags, as ``list_instances``' filters pick them; the
        quota's, the pending and running ones). Otherwise the pool's listing, as alone.

        Raises a CloudError when the listing fails. A failed max-instances or Service Quotas
        call leaves the instances, beside a ``Quota(error=...)`` that says why.
        """
        try:
            limit = max_instances(self.name, self.settings, self.client)
        except CloudError as exc:  # the quota is unknown: no need for the account's instances
            return self.list_instances(pool), Quota(error=exc.message)
        if not needs_instances(limit, self.settings):
            return self.list_instances(pool), Quota()
        live = self._describe([_states(LIVE_STATES)])
        ours = self._instances(vm for vm in live if in_pool(vm, pool, self.name))
        try:
            return ours, self._room(limit, [vm for vm in live if state_of(vm) in ACTIVE_STATES])
        except CloudError as exc:
            return ours, Quota(error=exc.message)
        except Exception as exc:  # noqa: BLE001 - as the snapshot holds quota(): a bug never stops a boot
            return ours, Quota(error=f"{type(exc).__name__}: {exc}")

    def find_image(self, url: str) -> str | None:
        """The AMI registered for the image URL ``url``: one named ``url``, else one tagged
        ``csctl-source-url = url``, the newest when several are (one DescribeImages each)."""
        for name in ("name", f"tag:{TAG_SOURCE_URL}"):
            filters = [{"Name": name, "Values": [url]}]
            with self._api("DescribeImages"):
                images = self.client.describe_images(Filters=filters).get("Images", [])
            if images:
                newest = max(images, key=lambda i: str(i.get("CreationDate", "")))
                return str(newest["ImageId"])
        return None

    # -- helpers -----------------------------------------------------------------

    def _make_client(self, service: str, endpoint_url: str | None) -> Any:
        import boto3
        from botocore.config import Config

        from csctl import __version__

        session = boto3.session.Session(profile_name=self.settings.profile, region_name=self.settings.region)
        config = Config(
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            retries={"total_max_attempts": self.settings.max_attempts, "mode": "standard"},
            user_agent_extra=f"csctl/{__version__}",
        )
        return session.client(service, endpoint_url=endpoint_url, config=config)

    def _boot_tags(self, request: BootRequest) -> dict[str, str]:
        """The batch's tags: the request's, with the batch id and Name EC2 lists them by."""
        tags = {TAG_TYPE: request.vm_type, TAG_CLOUD: self.name, **request.tags}
        return {**tags, TAG_BATCH: request.batch_id, "Name": request.batch_id}

    def _run_params(self, request: BootRequest, tags: Mapping[str, str]) -> dict[str, Any]:
        self._check_request(request, tags)
        params: dict[str, Any] = {
            "ImageId": request.image,
            "InstanceType": request.flavor,
            "MinCount": 1,
            "MaxCount": request.count,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        }
        if request.user_data:
            params["UserData"] = request.user_data  # botocore base64-encodes it
        if request.max_price is not None:
            params["InstanceMarketOptions"] = _spot_options(request.max_price)
        mapping = self._root_volume(request)
        if mapping:
            params["BlockDeviceMappings"] = mapping
        if self.settings.metadata_options:
            params["MetadataOptions"] = {
                "HttpEndpoint": "enabled",
                "HttpTokens": self.settings.metadata_tokens,
                "HttpPutResponseHopLimit": self.settings.metadata_hop_limit,
            }
        return {**params, **self._network_params(request.zone)}

    def _network_params(self, zone: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if zone is not None and self.settings.subnets:
            params["SubnetId"] = zone
        elif zone is not None:
            params["Placement"] = {"AvailabilityZone": zone}
        elif self.settings.subnet_id:
            params["SubnetId"] = self.settings.subnet_id
        if self.settings.security_group_ids:
            params["SecurityGroupIds"] = list(self.settings.security_group_ids)
        if self.settings.key_name:
            params["KeyName"] = self.settings.key_name
        return params

    def _root_volume(self, request: BootRequest) -> list[dict[str, Any]]:
        """The block device mapping that sizes the root volume to the VM type's disk: the
        image's root device, at least as large as the image's own snapshot (EC2 refuses a
        smaller one). Empty when unasked, or for an image without an EBS root."""
        if not self.settings.root_volume or not request.disk_gb:
            return []
        root = self._root_device(request.image)
        if root is None:
            return []
        device, snapshot_gb = root
        size = max(request.disk_gb, snapshot_gb)
        return [{"DeviceName": device, "Ebs": {"VolumeSize": size, "DeleteOnTermination": True}}]

    def _root_device(self, image: str) -> tuple[str, int] | None:
        """The image's root device name and snapshot size (one DescribeImages per image
        and process); None for an instance-store image or one EC2 does not describe."""
        from botocore.exceptions import ClientError

        if image not in self._root_devices:
            with self._api("DescribeImages"):
                try:
                    images = self.client.describe_images(ImageIds=[image]).get("Images", [])
                except ClientError as exc:
                    # an EC2-compatible cloud without DescribeImages boots the image's own size;
                    # an unknown image is RunInstances' to report, as for any boot
                    if not (unimplemented(exc) or unknown_image(exc)):
                        raise
                    return None
            self._root_devices[image] = _ebs_root(images[0]) if images else None
        return self._root_devices[image]

    def _with_spot_price(self, exc: CloudPriceError, request: BootRequest) -> CloudPriceError:
        """The price error with the instance type's current spot price (the lowest across
        zones, or the asked zone's), so the operator knows what bid would do."""
        params: dict[str, Any] = {
            "InstanceTypes": [request.flavor],
            "ProductDescriptions": ["Linux/UNIX"],
            "StartTime": datetime.now(UTC),  # the current price per zone, not the history
        }
        if request.zone is not None and not self.settings.subnets:
            params["AvailabilityZone"] = request.zone
        try:
            with self._api("DescribeSpotPriceHistory"):
                history = self.client.describe_spot_price_history(**params).get("SpotPriceHistory", [])
            price = min(float(h["SpotPrice"]) for h in history) if history else None
        except (CloudError, ValueError, KeyError):
            price = None  # the boot error stands without the price
        if price is None:
            return exc
        message = f"{exc.message.removeprefix(f'cloud {self.name}: ')}; spot price now {price:g}"
        bid = f" (bid {request.max_price:g})" if request.max_price is not None else ""
        return CloudPriceError(self.name, message + bid, exc.hint, price)

    def _check_request(self, request: BootRequest, tags: Mapping[str, str]) -> None:
        """Refuse, before any API call, what EC2 would refuse or csctl could not find again."""
        problem = _request_problem(request, tags)
        if problem:
            raise CloudBadRequest(self.name, f"batch {request.batch_id}: {problem}")

    def _terminate_chunk(self, ids: list[str]) -> list[str]:
        """Terminate ids in one call; when EC2 names ids it does not know, drop them and retry."""
        from botocore.exceptions import ClientError

        gone: list[str] = []
        while ids:
            with self._api("TerminateInstances"):
                try:
                    response = self.client.terminate_instances(InstanceIds=ids)
                except ClientError as exc:
                    unknown = unknown_instance_ids(exc, ids)
                    if not unknown:
                        raise
                    log.debug("%s: already gone: %s", self.name, ", ".join(unknown))
                    gone += unknown
                    ids = [i for i in ids if i not in unknown]
                    continue
            return gone + [vm["InstanceId"] for vm in response.get("TerminatingInstances", [])]
        return gone

    def _tag_chunk(self, ids: list[str], tags: list[dict[str, str]]) -> list[str]:
        """Tag ids in one call; EC2 refuses the whole call for one unknown id, so drop those
        it names and retry. Returns the ids tagged."""
        from botocore.exceptions import ClientError

        while ids:
            with self._api("CreateTags"):
                try:
                    self.client.create_tags(Resources=ids, Tags=tags)
                except ClientError as exc:
                    unknown = unknown_instance_ids(exc, ids)
                    if not unknown:
                        raise
                    log.debug("%s: already gone, not tagged: %s", self.name, ", ".join(unknown))
                    ids = [i for i in ids if i not in unknown]
                    continue
            return ids
        return []

    def _room(self, limit: int | None, active: Sequence[Mapping[str, Any]]) -> Quota:
        """The quota left under ``limit`` (max-instances, if readable) and, where the cloud reads
        them, the vCPU limits, by the account's pending and running instances ``active``."""
        limits = (
            vcpu_limits(self.name, self.settings, self.client, self.quotas_client, active)
            if self.settings.reads_vcpu_quotas
            else ()
        )
        return Quota(instances=None if limit is None else max(limit - len(active), 0), vcpus=limits)

    def _describe(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The instances DescribeInstances gives for ``filters``, every page of them."""
        with self._api("DescribeInstances"):
            pages = self.client.get_paginator("describe_instances").paginate(Filters=filters)
            return [vm for page in pages for res in page["Reservations"] for vm in res["Instances"]]

    def _instances(self, raw: Iterable[Mapping[str, Any]]) -> list[Instance]:
        return [vm for vm in (to_instance(r, self.name) for r in raw) if vm is not None]

    def _api(self, action: str) -> AbstractContextManager[None]:
        """API calls inside raise csctl CloudErrors only, whatever botocore raises."""
        return translated(self.name, self.settings, action)


def _states(states: Sequence[str]) -> dict[str, Any]:
    """A DescribeInstances filter on the instances' states (the account's, csctl's or not)."""
    return {"Name": "instance-state-name", "Values": list(states)}


def _request_problem(request: BootRequest, tags: Mapping[str, str]) -> str | None:
    if not request.flavor:
        return f"VM type {request.vm_type} has no instance type (flavor): EC2 needs one"
    if request.count < 1:
        return f"asked for {request.count} VMs"
    if len(request.user_data) > USER_DATA_LIMIT:
        return f"user-data is {len(request.user_data)} bytes, EC2 allows at most {USER_DATA_LIMIT} (16 KB)"
    if request.max_price is not None and request.max_price <= 0:
        return f"spot price must be positive, got {request.max_price}"
    if not tags.get(TAG_POOL):
        return f"no {TAG_POOL} tag: csctl could never find these VMs again"
    return None


def _ebs_root(image: Mapping[str, Any]) -> tuple[str, int] | None:
    device = image.get("RootDeviceName")
    if not device or image.get("RootDeviceType", "ebs") != "ebs":
        return None
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == device and "Ebs" in mapping:
            return str(device), int(mapping["Ebs"].get("VolumeSize") or 1)
    return str(device), 1


def _spot_options(max_price: float) -> dict[str, Any]:
    return {
        "MarketType": "spot",
        "SpotOptions": {
            "MaxPrice": format(Decimal(repr(max_price)), "f"),  # 0.05 -> "0.05", never "5e-02"
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        },
    }
