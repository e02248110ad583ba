"""The one interface every cloud driver implements.

Drivers import their SDK lazily (inside methods) so ``csctl --help`` stays fast,
normalise provider states into ``VMState`` and translate provider exceptions into
``csctl.errors.CloudError`` subclasses at this boundary: the core never sees an SDK
exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# Tag / metadata keys csctl writes on every instance it boots.
TAG_ID = "csctl-id"
TAG_POOL = "csctl-pool"
TAG_TYPE = "csctl-type"
TAG_CLOUD = "csctl-cloud"
TAG_BOOTED = "csctl-booted"


class VMState(StrEnum):
    """Provider states, normalised."""

    BOOTING = "booting"
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"
    ERROR = "error"


@dataclass(frozen=True)
class Instance:
    """One csctl-owned instance as a cloud lists it."""

    csctl_id: str
    cloud: str
    vm_type: str
    state: VMState
    provider_id: str
    booted_at: datetime | None = None
    address: str | None = None
    fault: str | None = None


@dataclass(frozen=True)
class BootRequest:
    """Boot ``count`` identical VMs of one type on one cloud in one API call.

    ``user_data`` holds one payload per VM (each VM has its own identity),
    ``ids`` the csctl ids, in the same order.
    """

    vm_type: str
    image: str
    flavor: str | None
    ids: Sequence[str]
    user_data: Sequence[bytes]
    tags: Mapping[str, str] = field(default_factory=dict)
    max_price: float | None = None


@dataclass(frozen=True)
class BootResult:
    """What a boot call achieved: the instances started, and the error that stopped the rest."""

    started: Sequence[Instance]
    error: Exception | None = None


@dataclass(frozen=True)
class Quota:
    """Remaining room on a cloud as its API reports it; None where it does not say."""

    instances: int | None = None
    cores: int | None = None
    memory_mb: int | None = None


class Cloud(Protocol):
    """A cloud csctl can boot on. One instance of a driver serves one configured cloud."""

    name: str

    def list_instances(self, pool: str) -> list[Instance]:
        """Every instance tagged for ``pool`` by csctl, in one (paginated) list call."""
        ...

    def boot(self, request: BootRequest) -> BootResult:
        """Boot the request's VMs in one batched call; never raises for partial success."""
        ...

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        """Terminate the given instances; return the csctl ids the cloud accepted."""
        ...

    def console_output(self, instance: Instance) -> str:
        """The instance's console log, or an empty string where the cloud keeps none."""
        ...

    def quota(self) -> Quota:
        """Remaining room, where the API offers it; ``Quota()`` otherwise."""
        ...
