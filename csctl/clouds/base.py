"""The cloud driver interface, for drivers written against ``csctl.clouds.base``.

The types live in ``csctl.model`` (shared by the planners and the engine); this module
re-exports them so third-party drivers of the ``csctl.clouds.v1`` entry-point group keep
importing them from here, and holds the helpers every driver shares to write and read
the ``csctl-joined`` tag.
"""

from __future__ import annotations

from datetime import UTC, datetime

from csctl.model import (
    TAG_BATCH,
    TAG_BOOTED,
    TAG_CLOUD,
    TAG_JOINED,
    TAG_POOL,
    TAG_TYPE,
    BootRequest,
    Cloud,
    Instance,
    Quota,
    VMState,
    vm_id,
)

__all__ = [
    "TAG_BATCH",
    "TAG_BOOTED",
    "TAG_CLOUD",
    "TAG_JOINED",
    "TAG_POOL",
    "TAG_TYPE",
    "BootRequest",
    "Cloud",
    "Instance",
    "Quota",
    "VMState",
    "joined_tag",
    "parse_joined",
    "vm_id",
]

_TIME_MAX = 64  # characters; an ISO 8601 time is about 30, a longer tag is not one


def joined_tag(when: datetime) -> str:
    """``when`` as the TAG_JOINED value: ISO 8601 in UTC to the second (a naive time is UTC)."""
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_joined(value: object) -> datetime | None:
    """A TAG_JOINED value read back from a cloud, in UTC; None unless it is an ISO 8601 time.

    Anyone with access to the project can write tags, so the value is untrusted: a
    malformed one reads as "not recorded" rather than failing the whole list.
    """
    if not isinstance(value, str) or len(value) > _TIME_MAX:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        return None
