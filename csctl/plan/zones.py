"""Zones (or subnets) that just ran out of capacity, skipped for a few minutes.

A cloud may list several zones or subnets to boot in. When one answers "insufficient
capacity", the boot moves on to the next, and that zone is left alone for a while, the
way Karpenter caches unavailable offerings: capacity comes back on its own, but asking
again at once only costs a call that fails. Pure bookkeeping; the engine keeps it in
the state directory next to the failure backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Longer than cron's five-minute cycle, so the next cycle skips the zone too, and short
# enough that a zone whose capacity came back is tried again within the quarter hour.
UNAVAILABLE_FOR = timedelta(minutes=7)


def zone_key(cloud: str, zone: str) -> str:
    """The key of ``zone`` of ``cloud`` in the cache (zone names repeat across clouds)."""
    return f"{cloud}/{zone}"


@dataclass
class UnavailableZones:
    """Until when each ``cloud/zone`` that failed for capacity is skipped."""

    until: dict[str, datetime] = field(default_factory=dict)

    def mark(self, cloud: str, zone: str, now: datetime) -> datetime:
        """Record that ``zone`` of ``cloud`` had no capacity at ``now``; return until when
        it is skipped."""
        self.until[zone_key(cloud, zone)] = now + UNAVAILABLE_FOR
        return self.until[zone_key(cloud, zone)]

    def active(self, now: datetime) -> dict[str, datetime]:
        """The entries still in force at ``now`` (the others are forgotten when saved)."""
        return {k: t for k, t in self.until.items() if t > now}


def zones_to_try(
    cloud: str, configured: Sequence[str], unavailable: Mapping[str, datetime], now: datetime
) -> tuple[str | None, ...]:
    """The zones of ``cloud`` to try this cycle, in configured order.

    ``(None,)`` when the cloud lists no zones (boot where the cloud chooses); an empty
    tuple when every configured zone is still skipped: the cloud has no capacity anywhere
    csctl may ask.
    """
    if not configured:
        return (None,)
    return tuple(z for z in configured if unavailable.get(zone_key(cloud, z), now) <= now)


def sanitized_zones(until: Mapping[str, datetime], now: datetime) -> tuple[UnavailableZones, list[str]]:
    """Entries read back from disk, which anyone may have edited: a skip reaching past
    ``now + UNAVAILABLE_FOR`` is clamped to it, expired ones are dropped. Returns one
    line per entry clamped, naming it."""
    problems: list[str] = []
    cache = UnavailableZones()
    latest = now + UNAVAILABLE_FOR
    for key, when in until.items():
        if when <= now:
            continue
        if when > latest:
            problems.append(f"skip of zone {key!r} until {when.isoformat()} clamped to {UNAVAILABLE_FOR}")
            when = latest
        cache.until[key] = when
    return cache, problems
