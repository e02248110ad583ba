"""EC2 instances as csctl Instances: which DescribeInstances entries are csctl's (a server-side
filter, or the same choice made here from an account-wide listing), and their csctl ids from
the batch tag and AmiLaunchIndex."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from csctl.clouds.base import parse_joined
from csctl.model import (
    TAG_BATCH,
    TAG_CLOUD,
    TAG_JOINED,
    TAG_POOL,
    TAG_SLOTS,
    TAG_TYPE,
    Instance,
    VMState,
    vm_id,
)

log = logging.getLogger(__name__)

LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
ACTIVE_STATES = ("pending", "running")  # the instances max-instances and the vCPU limits count

_STATES = {
    "pending": VMState.BOOTING,
    "running": VMState.RUNNING,
    "stopping": VMState.STOPPED,
    "stopped": VMState.STOPPED,
    "shutting-down": VMState.DELETED,
    "terminated": VMState.DELETED,
}


def pool_filters(pool: str, cloud: str) -> list[dict[str, Any]]:
    """DescribeInstances filters for the live instances tagged ``csctl-pool = pool`` and
    ``csctl-cloud = cloud`` (two clouds may share an account and region)."""
    return [
        {"Name": f"tag:{TAG_POOL}", "Values": [pool]},
        {"Name": f"tag:{TAG_CLOUD}", "Values": [cloud]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]


def in_pool(raw: Mapping[str, Any], pool: str, cloud: str) -> bool:
    """Whether ``pool_filters(pool, cloud)`` selects ``raw``: the same tag keys with exactly
    these values (pool and cloud names hold no EC2 filter wildcard), in a live state."""
    tags = {t.get("Key"): t.get("Value") for t in raw.get("Tags") or []}
    return tags.get(TAG_POOL) == pool and tags.get(TAG_CLOUD) == cloud and state_of(raw) in LIVE_STATES


def state_of(raw: Mapping[str, Any]) -> str:
    """The instance's state name ("running", ...), "" when the answer gives none."""
    return str((raw.get("State") or {}).get("Name", ""))


def to_instance(raw: Mapping[str, Any], cloud: str, sent: Mapping[str, str] | None = None) -> Instance | None:
    """``raw`` as an Instance of ``cloud``; ``sent`` tags fill in those a RunInstances answer
    may omit. None, with a warning, for an instance without csctl's batch tag."""
    tags = {**(sent or {}), **{t["Key"]: t["Value"] for t in raw.get("Tags", [])}}
    batch = tags.get(TAG_BATCH)
    if batch is None:
        log.warning("%s: instance %s has no %s tag: ignored", cloud, raw["InstanceId"], TAG_BATCH)
        return None
    state = _STATES.get(raw["State"]["Name"], VMState.ERROR)
    return Instance(
        csctl_id=vm_id(batch, int(raw.get("AmiLaunchIndex", 0))),
        cloud=tags.get(TAG_CLOUD, cloud),
        vm_type=tags.get(TAG_TYPE, ""),
        state=state,
        provider_id=raw["InstanceId"],
        booted_at=raw.get("LaunchTime"),
        address=raw.get("PrivateIpAddress"),
        fault=_fault(raw, state),
        image=raw.get("ImageId"),
        joined_at=parse_joined(tags.get(TAG_JOINED)),
        single_slot=tags.get(TAG_SLOTS) == "1",
    )


def _fault(raw: Mapping[str, Any], state: VMState) -> str | None:
    """EC2's reason for a state other than running (spot reclaim, shutdown, ...)."""
    if state is VMState.RUNNING:
        return None
    message = str(raw.get("StateReason", {}).get("Message", "")).strip()
    return message or None
