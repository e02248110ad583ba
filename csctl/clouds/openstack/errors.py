"""openstacksdk, keystoneauth and requests exceptions as csctl ``CloudError`` subclasses.

Every API call of the driver runs inside ``translated``: the rest of csctl only ever
sees csctl's own error hierarchy, with a hint naming the clouds.yaml entry to check.
The SDKs are imported inside the functions, on first use only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from csctl.clouds.openstack.settings import Settings
from csctl.errors import (
    CloudAuthError,
    CloudBackendError,
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudQuotaError,
    CloudTimeout,
)

# Nova says 403 for quota ("Quota exceeded for instances: ...") and for port limits
# ("Maximum number of ports exceeded"); other 403s are policy refusals.
_QUOTA_403 = re.compile(r"quota|exceeded", re.IGNORECASE)
_MESSAGE_MAX = 300


@contextmanager
def translated(cloud: str, settings: Settings, action: str) -> Iterator[None]:
    """Translate openstacksdk, keystoneauth and requests exceptions into CloudErrors."""
    import requests
    from keystoneauth1.exceptions import ClientException
    from openstack.exceptions import SDKException

    try:
        yield
    except (SDKException, ClientException, requests.RequestException) as exc:
        raise translate(exc, cloud, settings, action) from exc


def translate(exc: Exception, cloud: str, settings: Settings, action: str) -> CloudError:
    """The CloudError of cloud ``cloud`` that ``exc``, raised during ``action``, amounts to."""
    from openstack import exceptions as sdk

    if isinstance(exc, sdk.ConfigException):
        message = f"clouds.yaml entry '{settings.cloud}': {one_line(str(exc))}"
        return CloudAuthError(cloud, message, _config_hint(settings))
    if isinstance(exc, sdk.HttpException) and exc.status_code is not None:
        detail = _http_detail(exc)
        kind = _status_kind(exc.status_code, detail)
        return kind(cloud, f"{action} failed: {exc.status_code}: {detail}", _hint(kind, settings))
    message = f"{action} failed: {one_line(str(exc))}"
    kind = _exception_kind(exc)
    return kind(cloud, message, _hint(kind, settings))


def missing_server(exc: Any, server_id: str) -> bool:
    """Whether an error says the server itself is gone (not merely its console)."""
    return exc.status_code == 404 and server_id in str(exc.details or "")


def fatal(exc: CloudError) -> bool:
    """Errors that would fail every further call the same way."""
    return isinstance(exc, CloudAuthError | CloudTimeout)


def one_line(text: str) -> str:
    """Whitespace collapsed, long provider blobs (Nova echoes rejected values) cut short."""
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


def _hint(kind: type[CloudError], settings: Settings) -> str | None:
    if kind is CloudAuthError:
        return _config_hint(settings)
    if kind is CloudQuotaError:
        return "ask for fewer VMs or a smaller flavor, or raise the project's quota"
    if kind is CloudTimeout:
        return f"check that the endpoints of clouds.yaml entry '{settings.cloud}' are reachable"
    return None


def _config_hint(settings: Settings) -> str:
    return (
        f"check the '{settings.cloud}' entry of clouds.yaml "
        "($OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/ or /etc/openstack/)"
    )


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


def _http_detail(exc: Any) -> str:
    return one_line(str(exc.details or exc.message or "no details"))
