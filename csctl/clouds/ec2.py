"""EC2 driver (boto3): AWS and EC2-compatible clouds through ``endpoint_url``.

One boot is one ``RunInstances`` call (MinCount=1, MaxCount=count) whose VMs share
one user-data payload and the batch's tags; each VM's csctl id is derived from the
``csctl-batch`` tag and its ``AmiLaunchIndex``, which the VM reads from its metadata
service too. boto3 is imported on first use only, and every botocore exception is
translated into a ``csctl.errors.CloudError`` subclass here, at the boundary.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

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

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)

USER_DATA_LIMIT = 16 * 1024  # bytes, before base64: EC2's documented cap
TERMINATE_CHUNK = 1000  # instance ids per TerminateInstances call
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")

_STATES = {
    "pending": VMState.BOOTING,
    "running": VMState.RUNNING,
    "stopping": VMState.STOPPED,
    "stopped": VMState.STOPPED,
    "shutting-down": VMState.DELETED,
    "terminated": VMState.DELETED,
}

_AUTH_CODES = frozenset(
    {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch"}
)
_QUOTA_CODES = frozenset(
    {
        "InstanceLimitExceeded",
        "InsufficientInstanceCapacity",
        "VcpuLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "SpotMaxPriceTooLow",
        "RequestLimitExceeded",
        "InsufficientFreeAddressesInSubnet",
    }
)
_BAD_REQUEST_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "InvalidParameter",
        "MissingParameter",
        "InvalidGroup.NotFound",
        "InvalidKeyPair.NotFound",
        "InvalidInstanceID.Malformed",
        "InvalidUserData.Malformed",
        "Unsupported",
    }
)
_BAD_REQUEST_PREFIXES = ("InvalidAMIID.", "InvalidSubnetID.", "InvalidInstanceType.")
_NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound"})
# Codes with which EC2-compatible clouds say "this API call does not exist here".
_UNIMPLEMENTED_CODES = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented"})

_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
_INSTANCE_ID = re.compile(r"\bi-[0-9a-zA-Z]+\b")
_MESSAGE_MAX = 300


class Settings(BaseModel):
    """Keys of a ``driver = "ec2"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(min_length=1)
    profile: str | None = Field(None, description="AWS profile; default credential chain if unset")
    endpoint_url: str | None = Field(None, description="API of an EC2-compatible cloud")
    subnet_id: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for a connection")
    read_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    max_attempts: int = Field(3, ge=1, description="tries per API call, retries included")

    @field_validator("endpoint_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://\S+", value):
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return value


class Driver:
    """One configured EC2 (or EC2-compatible) cloud: region, credentials and network."""

    metadata_service = "ec2"  # VMs read ami-launch-index from the instance metadata
    user_data_limit = USER_DATA_LIMIT

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self.private_network = settings.private_network

    @cached_property
    def client(self) -> Any:
        """The boto3 EC2 client, created on first use (so boto3 is imported only then)."""
        with self._api("connect"):
            return self._make_client()

    def list_instances(self, pool: str) -> list[Instance]:
        """Every live instance tagged ``csctl-pool = pool`` and ``csctl-cloud = <this cloud>``,
        in one paginated DescribeInstances (two clouds may share an account and region)."""
        filters = [
            {"Name": f"tag:{TAG_POOL}", "Values": [pool]},
            {"Name": f"tag:{TAG_CLOUD}", "Values": [self.name]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]
        with self._api("DescribeInstances"):
            pages = self.client.get_paginator("describe_instances").paginate(Filters=filters)
            raw = [vm for page in pages for res in page["Reservations"] for vm in res["Instances"]]
        return [vm for vm in (self._instance(r) for r in raw) if vm is not None]

    def boot(self, request: BootRequest) -> list[Instance]:
        """Boot up to ``request.count`` VMs in one RunInstances call (spot when priced).

        Returns the instances EC2 started, possibly fewer than asked. The request is
        checked before any API call: a missing instance type, an empty batch or
        user-data over 16 KB raise CloudBadRequest.
        """
        tags = self._boot_tags(request)
        params = self._run_params(request, tags)
        with self._api("RunInstances"):
            response = self.client.run_instances(**params)
        started = [self._instance(raw, tags) for raw in response.get("Instances", [])]
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

    def console_output(self, instance: Instance) -> str:
        """The instance's console log (botocore decodes EC2's base64), "" when there is none."""
        with self._api("GetConsoleOutput"):
            response = self.client.get_console_output(InstanceId=instance.provider_id)
        output = response.get("Output") or ""
        return output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)

    def quota(self) -> Quota:
        """The account's ``max-instances`` minus its pending and running instances.

        That limit counts every instance of the account in the region, not only
        csctl's. ``Quota()`` where the cloud does not report the attribute.
        """
        limit = self._max_instances()
        if limit is None:
            return Quota()
        return Quota(instances=max(limit - self._count_active(), 0))

    # -- helpers -----------------------------------------------------------------

    def _make_client(self) -> Any:
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
        return session.client("ec2", endpoint_url=self.settings.endpoint_url, config=config)

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
        return {**params, **self._network_params()}

    def _network_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.settings.subnet_id:
            params["SubnetId"] = self.settings.subnet_id
        if self.settings.security_group_ids:
            params["SecurityGroupIds"] = list(self.settings.security_group_ids)
        if self.settings.key_name:
            params["KeyName"] = self.settings.key_name
        return params

    def _check_request(self, request: BootRequest, tags: Mapping[str, str]) -> None:
        """Refuse, before any API call, what EC2 would refuse or csctl could not find again."""
        problem = _request_problem(request, tags)
        if problem:
            raise CloudBadRequest(self.name, f"batch {request.batch_id}: {problem}")

    def _instance(self, raw: Mapping[str, Any], sent: Mapping[str, str] | None = None) -> Instance | None:
        """``raw`` as an Instance; ``sent`` tags fill in those a RunInstances answer may omit."""
        tags = {**(sent or {}), **{t["Key"]: t["Value"] for t in raw.get("Tags", [])}}
        batch = tags.get(TAG_BATCH)
        if batch is None:
            log.warning("%s: instance %s has no %s tag: ignored", self.name, raw["InstanceId"], TAG_BATCH)
            return None
        state = _STATES.get(raw["State"]["Name"], VMState.ERROR)
        return Instance(
            csctl_id=vm_id(batch, int(raw.get("AmiLaunchIndex", 0))),
            cloud=tags.get(TAG_CLOUD, self.name),
            vm_type=tags.get(TAG_TYPE, ""),
            state=state,
            provider_id=raw["InstanceId"],
            booted_at=raw.get("LaunchTime"),
            address=raw.get("PrivateIpAddress"),
            fault=_fault(raw, state),
            image=raw.get("ImageId"),
        )

    def _terminate_chunk(self, ids: list[str]) -> list[str]:
        """Terminate ids in one call; when EC2 names ids it does not know, drop them and retry."""
        from botocore.exceptions import ClientError

        gone: list[str] = []
        while ids:
            with self._api("TerminateInstances"):
                try:
                    response = self.client.terminate_instances(InstanceIds=ids)
                except ClientError as exc:
                    unknown = _unknown_instance_ids(exc, ids)
                    if not unknown:
                        raise
                    log.debug("%s: already gone: %s", self.name, ", ".join(unknown))
                    gone += unknown
                    ids = [i for i in ids if i not in unknown]
                    continue
            return gone + [vm["InstanceId"] for vm in response.get("TerminatingInstances", [])]
        return gone

    def _max_instances(self) -> int | None:
        from botocore.exceptions import ClientError

        with self._api("DescribeAccountAttributes"):
            try:
                response = self.client.describe_account_attributes(AttributeNames=["max-instances"])
            except ClientError as exc:
                if _code(exc) in _UNIMPLEMENTED_CODES:
                    return None
                raise
        return _attribute_int(response.get("AccountAttributes", []), "max-instances")

    def _count_active(self) -> int:
        filters = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        with self._api("DescribeInstances"):
            pages = self.client.get_paginator("describe_instances").paginate(Filters=filters)
            return sum(len(res["Instances"]) for page in pages for res in page["Reservations"])

    @contextmanager
    def _api(self, action: str) -> Iterator[None]:
        """Translate botocore exceptions raised inside into CloudError subclasses."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, action) from exc

    def _translate(self, exc: ClientError | BotoCoreError, action: str) -> CloudError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            return self._translate_client_error(exc, action)
        return self._translate_botocore_error(exc, action)

    def _translate_client_error(self, exc: ClientError, action: str) -> CloudError:
        code = _code(exc)
        message = f"{action} failed: {code}: {_one_line(_provider_message(exc))}"
        kind = _client_error_kind(code)
        return kind(self.name, message, self._hint(kind))

    def _translate_botocore_error(self, exc: BotoCoreError, action: str) -> CloudError:
        from botocore import exceptions as bce

        message = f"{action} failed: {_one_line(str(exc))}"
        if isinstance(exc, bce.ProfileNotFound):
            missing = f"AWS profile '{self.settings.profile}' not found"
            return CloudAuthError(self.name, missing, self._auth_hint())
        if isinstance(exc, _auth_exceptions()):
            return CloudAuthError(self.name, message, self._auth_hint())
        if isinstance(exc, bce.EndpointConnectionError | bce.ReadTimeoutError):
            hint = f"check that {self._endpoint()} is reachable from this host"
            return CloudTimeout(self.name, message, hint)
        if isinstance(exc, bce.ParamValidationError):
            return CloudBadRequest(self.name, message)
        return CloudBackendError(self.name, message)

    def _hint(self, kind: type[CloudError]) -> str | None:
        if kind is CloudAuthError:
            return self._auth_hint()
        if kind is CloudQuotaError:
            return "ask for fewer VMs, another instance type or region, or try again later"
        return None

    def _auth_hint(self) -> str:
        if self.settings.profile:
            return f"check AWS profile '{self.settings.profile}' in ~/.aws/config and ~/.aws/credentials"
        return "no profile set: check the default AWS credential chain (AWS_* variables, ~/.aws)"

    def _endpoint(self) -> str:
        return self.settings.endpoint_url or f"the EC2 endpoint of region {self.settings.region}"


def _client_error_kind(code: str) -> type[CloudError]:
    if code in _AUTH_CODES:
        return CloudAuthError
    if code in _QUOTA_CODES:
        return CloudQuotaError
    if code in _BAD_REQUEST_CODES or code.startswith(_BAD_REQUEST_PREFIXES):
        return CloudBadRequest
    if code in _NOT_FOUND_CODES:
        return CloudNotFound
    return CloudBackendError


def _auth_exceptions() -> tuple[type[Exception], ...]:
    from botocore import exceptions as bce

    return (
        bce.NoCredentialsError,
        bce.PartialCredentialsError,
        bce.CredentialRetrievalError,
        bce.TokenRetrievalError,
        bce.SSOError,
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _provider_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _unknown_instance_ids(exc: ClientError, ids: Sequence[str]) -> list[str]:
    """The ids among ``ids`` that an InvalidInstanceID.NotFound error names."""
    if _code(exc) not in _NOT_FOUND_CODES:
        return []
    named = set(_INSTANCE_ID.findall(_provider_message(exc)))
    return [i for i in ids if i in named]


def _one_line(text: str) -> str:
    """Whitespace collapsed, access key ids masked, long provider blobs cut short."""
    text = _ACCESS_KEY_ID.sub("<access key id>", " ".join(text.split()))
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


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


def _spot_options(max_price: float) -> dict[str, Any]:
    return {
        "MarketType": "spot",
        "SpotOptions": {
            "MaxPrice": format(Decimal(repr(max_price)), "f"),  # 0.05 -> "0.05", never "5e-02"
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
        },
    }


def _fault(raw: Mapping[str, Any], state: VMState) -> str | None:
    """EC2's reason for a state other than running (spot reclaim, shutdown, ...)."""
    if state is VMState.RUNNING:
        return None
    message = str(raw.get("StateReason", {}).get("Message", "")).strip()
    return message or None


def _attribute_int(attributes: Sequence[Mapping[str, Any]], name: str) -> int | None:
    for attribute in attributes:
        if attribute.get("AttributeName") != name:
            continue
        for value in attribute.get("AttributeValues", []):
            try:
                return int(value.get("AttributeValue", ""))
            except ValueError:
                return None
    return None
