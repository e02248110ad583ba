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
TAG_POOL = "csctl-pool"
TAG_TYPE = "csctl-type"
TAG_CLOUD = "csctl-cloud"
TAG_BATCH = "csctl-batch"
TAG_BOOTED = "csctl-booted"


def vm_id(batch_id: str, launch_index: int) -> str:
    """The csctl id of the ``launch_index``-th VM (0-based) of a boot batch.

    One boot call starts a batch of identical VMs sharing one user-data payload
    (EC2 MinCount/MaxCount, Nova min/max count); each VM learns its launch index from
    its cloud's metadata service (EC2 ``ami-launch-index``, OpenStack
    ``launch_index``), and the cloud lists it, so both sides derive the same id.
    """
    return f"{batch_id}-{launch_index}"


class VMState(StrEnum):
    """Provider states, normalised."""

    BOOTING = "booting"
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"
    ERROR = "error"


@dataclass(frozen=True)
class Instance:
    """One csctl-owned instance as a cloud lists it. ``csctl_id`` is ``vm_id(batch, index)``."""

    csctl_id: str
    cloud: str
    vm_type: str
    state: VMState
    provider_id: str
    booted_at: datetime | None = None
    address: str | None = None
    fault: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class BootRequest:
    """Boot up to ``count`` identical VMs of one type on one cloud in ONE API call.

    ``batch_id`` (``<cloud>-<short uuid>``) names the batch: instance names start with
    it and ``tags`` (pool, type, cloud, batch, boot time) go on every instance.
    ``user_data`` is the one payload all VMs of the batch receive (already gzipped
    where the cloud needs it). ``max_price`` asks for spot capacity at that bid.
    """

    batch_id: str
    vm_type: str
    count: int
    image: str
    flavor: str | None
    user_data: bytes
    tags: Mapping[str, str] = field(default_factory=dict)
    max_price: float | None = None


@dataclass(frozen=True)
class Quota:
    """Remaining room on a cloud as its API reports it; None where it does not say."""

    instances: int | None = None
    cores: int | None = None
    memory_mb: int | None = None


class Cloud(Protocol):
    """A cloud csctl can boot on. One instance of a driver serves one configured cloud.

    ``metadata_service`` tells the VM where to find its launch index ("ec2",
    "openstack" or "none"); ``user_data_limit`` is the API's cap in bytes, if any.
    """

    name: str
    metadata_service: str
    user_data_limit: int | None

    def list_instances(self, pool: str) -> list[Instance]:
        """Every instance tagged for ``pool`` by csctl, in one (paginated) list call."""
        ...

    def boot(self, request: BootRequest) -> list[Instance]:
        """Boot the request's VMs in one call. Returns the instances started, fewer than
        asked when the cloud granted fewer. Raises a CloudError subclass when none
        started (CloudQuotaError for quota or capacity, so the caller may ask for less)."""
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
