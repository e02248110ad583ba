"""Failure backoff: a cloud, or an image on a cloud, that failed is skipped for a while.

What helps after a failure depends on its kind (``after_failure``): a cloud out of quota
or capacity may grant fewer VMs; a throttled API only needs time; a spot price above the
bid, a higher bid.

Pure bookkeeping; the engine loads and saves it (``csctl/engine/state.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from csctl.plan.zones import UnavailableZones

# Longer than cron's five-minute cycle, so a cloud that failed sits out the next cycle.
BASE_DELAY = timedelta(minutes=7)
MAX_DELAY = timedelta(hours=2)
# Past this many failures in a row the delay stays at MAX_DELAY; counts are kept no higher.
MAX_FAILURES = 16


def delay_after(failures: int) -> timedelta:
    """How long a key is skipped after ``failures`` failures in a row."""
    n = min(max(failures, 1), MAX_FAILURES)
    return min(BASE_DELAY * (1 << (n - 1)), MAX_DELAY)


@dataclass
class Backoff:
    """Failures per cloud (``"Hermes"``) or image on a cloud (``"Hermes/ami-1"``).

    After n consecutive failures a key is skipped for BASE_DELAY * 2**(n-1), at most
    MAX_DELAY; a success forgets it. ``zones`` are the zones that just ran out of
    capacity (``plan.zones``), kept in the same state file.
    """

    failures: dict[str, int] = field(default_factory=dict)
    until: dict[str, datetime] = field(default_factory=dict)
    zones: UnavailableZones = field(default_factory=UnavailableZones)

    def fail(self, key: str, now: datetime) -> datetime:
        """Count a failure of ``key``; return until when it is skipped."""
        n = min(self.failures.get(key, 0) + 1, MAX_FAILURES)
        self.failures[key] = n
        self.until[key] = now + delay_after(n)
        return self.until[key]

    def succeed(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self.failures.pop(key, None)
        self.until.pop(key, None)

    def active(self, now: datetime) -> dict[str, datetime]:
        """Keys still backed off at ``now``."""
        return {k: t for k, t in self.until.items() if t > now}


def sanitized(
    failures: Mapping[str, object], until: Mapping[str, datetime], now: datetime
) -> tuple[Backoff, list[str]]:
    """A Backoff from entries read back from disk, which anyone may have edited: counts
    that are not small non-negative integers are dropped, counts above MAX_FAILURES and
    skips reaching past ``now + MAX_DELAY`` are clamped. Returns one line per entry
    changed, naming it."""
    problems: list[str] = []
    backoff = Backoff()
    for key, count in failures.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            problems.append(f"failure count of {key!r} is not a count: ignored")
            continue
        if count > MAX_FAILURES:
            problems.append(f"failure count of {key!r} clamped to {MAX_FAILURES}")
        backoff.failures[key] = min(count, MAX_FAILURES)
    latest = now + MAX_DELAY
    for key, when in until.items():
        if when > latest:
            problems.append(f"skip of {key!r} until {when.isoformat()} clamped to {MAX_DELAY}")
            when = latest
        backoff.until[key] = when
    return backoff, problems


@dataclass(frozen=True)
class Response:
    """What to do after a boot call failed: ask again for fewer VMs (``halve``), try the
    cloud's next zone first (``next_zone``), and skip the cloud for a while (``back_off``)."""

    halve: bool
    next_zone: bool
    back_off: bool


# the error kinds of csctl/engine/boot.py's outcomes
_RESPONSES = {
    "capacity": Response(halve=True, next_zone=True, back_off=True),
    "quota": Response(halve=True, next_zone=False, back_off=True),
    # EC2's RequestLimitExceeded: the same request succeeds later; fewer VMs do not help
    "throttled": Response(halve=False, next_zone=False, back_off=True),
    # SpotMaxPriceTooLow: only a higher bid helps, and the cloud serves other requests
    "price": Response(halve=False, next_zone=False, back_off=False),
}
_GIVE_UP = Response(halve=False, next_zone=False, back_off=True)


def after_failure(kind: str) -> Response:
    """What to do after a boot call failed with an error of ``kind``."""
    return _RESPONSES.get(kind, _GIVE_UP)
