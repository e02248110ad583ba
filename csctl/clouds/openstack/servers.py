"""Nova servers as csctl Instances: ownership, csctl ids, states, addresses and faults.

Nova names the servers of one multi-create ``<batch>-1`` .. ``<batch>-N`` (a lone server
keeps the plain batch name); that suffix is the launch index + 1, so a server's csctl id
comes from its ``csctl-batch`` metadata and its name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from csctl.clouds.base import parse_joined
from csctl.clouds.openstack.errors import one_line
from csctl.clouds.openstack.settings import TAG_IMAGE
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

_REGEX_SPECIALS = re.compile(r"([.^$*+?()\[\]{}|\\])")


def owned(server: Any, pool: str, cloud: str) -> bool:
    """Whether csctl booted ``server`` for ``pool`` on ``cloud`` (two clouds may share a project)."""
    metadata: Mapping[str, str] = server.metadata or {}
    return metadata.get(TAG_POOL) == pool and metadata.get(TAG_CLOUD) == cloud and TAG_BATCH in metadata


def to_instance(server: Any, cloud: str) -> Instance:
    """``server``, which carries csctl's batch metadata, as an Instance of ``cloud``."""
    metadata: Mapping[str, str] = server.metadata or {}
    state = _STATES.get(str(server.status).upper(), VMState.ERROR)
    return Instance(
        csctl_id=_csctl_id(server, metadata[TAG_BATCH], cloud),
        cloud=metadata.get(TAG_CLOUD, cloud),
        vm_type=metadata.get(TAG_TYPE, ""),
        state=state,
        provider_id=server.id,
        booted_at=_timestamp(server.created_at),
        address=_fixed_address(server.addresses or {}),
        fault=_fault(server.fault, state),
        image=metadata.get(TAG_IMAGE),
        joined_at=parse_joined(metadata.get(TAG_JOINED)),
        single_slot=metadata.get(TAG_SLOTS) == "1",
    )


def batch_name_filter(batch_id: str) -> str:
    """Nova's ``name`` filter (a regex) matching the servers of batch ``batch_id``."""
    return f"^{_regex_escape(batch_id)}(-[0-9]+)?$"


def room(limit: int | None, used: int | None) -> int | None:
    """What is left of a compute limit; None where it is unlimited."""
    if limit is None or limit < 0:  # -1: unlimited
        return None
    return max(limit - (used or 0), 0)


def _csctl_id(server: Any, batch: str, cloud: str) -> str:
    index = _launch_index(server.name, batch)
    if index is None:
        # Renamed by someone: its launch index is lost, but csctl must still see it.
        log.warning("%s: server %s (%s) renamed: listed by its server id", cloud, server.id, server.name)
        return f"{batch}-{server.id}"
    return vm_id(batch, index)


def _launch_index(name: str, batch: str) -> int | None:
    """0 for a lone server named ``batch``; i-1 for ``batch-i`` of a multi-create."""
    if name == batch:
        return 0
    prefix, _, suffix = name.rpartition("-")
    if prefix == batch and suffix.isdigit() and int(suffix) >= 1:
        return int(suffix) - 1
    return None


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
    message = one_line(str(fault.get("message", "")))
    return message or None
