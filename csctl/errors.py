"""csctl's own small error hierarchy and its exit codes.

The core and the drivers raise only these; provider exceptions (botocore,
openstacksdk, htcondor) are translated at the boundary where they are caught.
The CLI's single top-level handler turns a CsctlError into one line and a hint.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable for scripts and cron."""

    OK = 0
    ERROR = 1
    USAGE = 2
    CONFIG = 3
    PARTIAL = 4
    POOL_UNREACHABLE = 5
    LOCKED = 6
    CREDENTIAL = 7
    INTERRUPTED = 130


class CsctlError(Exception):
    """Base for every error csctl reports as one line.

    ``hint`` is an optional second line telling the operator what to try.
    """

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(CsctlError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` holds one line per problem, each naming file, key path and expectation.
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("; ".join(problems), hint)
        self.problems = problems


class InputError(CsctlError):
    """Bad input given on the command line, stdin or in a file the operator named."""

    exit_code = ExitCode.USAGE


class PoolUnreachable(CsctlError):
    """The HTCondor collector or a schedd could not be queried."""

    exit_code = ExitCode.POOL_UNREACHABLE


class CredentialError(CsctlError):
    """A certificate, key, token or proxy is unusable (expired, mismatched, unsafe)."""

    exit_code = ExitCode.CREDENTIAL


class LockHeld(CsctlError):
    """Another csctl process holds the cycle lock."""

    exit_code = ExitCode.LOCKED


class CloudError(CsctlError):
    """Base for errors raised by cloud drivers, translated from the provider's SDK."""

    def __init__(self, cloud: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"cloud {cloud}: {message}", hint)
        self.cloud = cloud


class CloudAuthError(CloudError):
    """The cloud rejected csctl's credentials."""


class CloudQuotaError(CloudError):
    """The cloud refused for quota or capacity; asking for fewer may succeed."""


class CloudCapacityError(CloudQuotaError):
    """The cloud has no capacity of this kind where it was asked (a zone or subnet): another
    zone may have some, and asking for fewer comes after trying them."""


class CloudThrottled(CloudError):
    """The cloud throttled csctl's API calls: retry later, asking for no fewer VMs."""


class CloudPriceError(CloudError):
    """The spot bid is below the current spot price; ``price`` is that price where known.
    Asking for fewer VMs does not help."""

    def __init__(self, cloud: str, message: str, hint: str | None = None, price: float | None = None) -> None:
        super().__init__(cloud, message, hint)
        self.price = price


class CloudBadRequest(CloudError):
    """The cloud rejected the request itself: unknown image, flavor, network..."""


class CloudTimeout(CloudError):
    """The cloud did not answer in time."""


class CloudNotFound(CloudError):
    """The instance or resource does not exist (any more)."""


class CloudBackendError(CloudError):
    """Any other failure of the cloud or its SDK."""
