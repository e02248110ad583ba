"""botocore exceptions as csctl ``CloudError`` subclasses, and what EC2 error codes mean.

Every API call of the driver runs inside ``translated``: the rest of csctl only ever
sees csctl's own error hierarchy, with a hint naming the profile or endpoint to check.
botocore is imported inside the functions, on first use only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from csctl.clouds.ec2.settings import Settings
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

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError

_AUTH_CODES = frozenset(
    {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch"}
)
_QUOTA_CODES = frozenset({"InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"})
# Capacity missing where the request was placed: another subnet or zone may have it.
_CAPACITY_CODES = frozenset(
    {"InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet", "InsufficientCapacity"}
)
# Throttling: the same request succeeds later; asking for fewer VMs does not help.
_THROTTLE_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
)
_PRICE_CODES = frozenset({"SpotMaxPriceTooLow"})
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


@contextmanager
def translated(cloud: str, settings: Settings, action: str) -> Iterator[None]:
    """Translate botocore exceptions raised inside into CloudError subclasses."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, cloud, settings, action) from exc


def translate(exc: ClientError | BotoCoreError, cloud: str, settings: Settings, action: str) -> CloudError:
    """The CloudError of cloud ``cloud`` that ``exc``, raised during ``action``, amounts to."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return _translate_client_error(exc, cloud, settings, action)
    return _translate_botocore_error(exc, cloud, settings, action)


def unimplemented(exc: ClientError) -> bool:
    """Whether an EC2-compatible cloud says the API call does not exist there."""
    return _code(exc) in _UNIMPLEMENTED_CODES


def unknown_image(exc: ClientError) -> bool:
    """Whether EC2 says the image does not exist or its id is malformed."""
    return _code(exc).startswith("InvalidAMIID.")


def unknown_instance_ids(exc: ClientError, ids: Sequence[str]) -> list[str]:
    """The ids among ``ids`` that an InvalidInstanceID.NotFound error names."""
    if _code(exc) not in _NOT_FOUND_CODES:
        return []
    named = set(_INSTANCE_ID.findall(_provider_message(exc)))
    return [i for i in ids if i in named]


def _translate_client_error(exc: ClientError, cloud: str, settings: Settings, action: str) -> CloudError:
    code = _code(exc)
    message = f"{action} failed: {code}: {_one_line(_provider_message(exc))}"
    kind = _client_error_kind(code)
    return kind(cloud, message, _hint(kind, settings))


def _translate_botocore_error(exc: BotoCoreError, cloud: str, settings: Settings, action: str) -> CloudError:
    from botocore import exceptions as bce

    message = f"{action} failed: {_one_line(str(exc))}"
    if isinstance(exc, bce.ProfileNotFound):
        missing = f"AWS profile '{settings.profile}' not found"
        return CloudAuthError(cloud, missing, _auth_hint(settings))
    if isinstance(exc, _auth_exceptions()):
        return CloudAuthError(cloud, message, _auth_hint(settings))
    if isinstance(exc, bce.EndpointConnectionError | bce.ReadTimeoutError):
        hint = f"check that {_endpoint(settings)} is reachable from this host"
        return CloudTimeout(cloud, message, hint)
    if isinstance(exc, bce.ParamValidationError):
        return CloudBadRequest(cloud, message)
    return CloudBackendError(cloud, message)


def _hint(kind: type[CloudError], settings: Settings) -> str | None:
    if kind is CloudAuthError:
        return _auth_hint(settings)
    if kind is CloudQuotaError:
        return "ask for fewer VMs, another instance type or region, or try again later"
    if kind is CloudCapacityError:
        return "configure several subnets or availability_zones so csctl can try another zone"
    if kind is CloudThrottled:
        return "EC2 throttles this account's API calls: csctl retries in a later cycle"
    if kind is CloudPriceError:
        return "raise the jobs' VMMaximumPrice (or the cloud's max_price) above the spot price"
    return None


def _auth_hint(settings: Settings) -> str:
    if settings.profile:
        return f"check AWS profile '{settings.profile}' in ~/.aws/config and ~/.aws/credentials"
    return "no profile set: check the default AWS credential chain (AWS_* variables, ~/.aws)"


def _endpoint(settings: Settings) -> str:
    return settings.endpoint_url or f"the EC2 endpoint of region {settings.region}"


def _client_error_kind(code: str) -> type[CloudError]:
    if code in _AUTH_CODES:
        return CloudAuthError
    if code in _QUOTA_CODES:
        return CloudQuotaError
    if code in _CAPACITY_CODES:
        return CloudCapacityError
    if code in _THROTTLE_CODES:
        return CloudThrottled
    if code in _PRICE_CODES:
        return CloudPriceError
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


def _one_line(text: str) -> str:
    """Whitespace collapsed, access key ids masked, long provider blobs cut short."""
    text = _ACCESS_KEY_ID.sub("<access key id>", " ".join(text.split()))
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"
