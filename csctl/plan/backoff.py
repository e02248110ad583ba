"""Failure backoff: a cloud, or an image on a cloud, that failed is skipped for a while.

Pure bookkeeping; the engine loads and saves it (``csctl/engine/state.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

BASE_DELAY = timedelta(minutes=2)
MAX_DELAY = timedelta(hours=2)


@dataclass
class Backoff:
    """Failures per cloud (``"Hermes"``) or image on a cloud (``"Hermes/ami-1"``).

    After n consecutive failures a key is skipped for BASE_DELAY * 2**(n-1), at most
    MAX_DELAY; a success forgets it.
    """

    failures: dict[str, int] = field(default_factory=dict)
    until: dict[str, datetime] = field(default_factory=dict)

    def fail(self, key: str, now: datetime) -> datetime:
        """Count a failure of ``key``; return until when it is skipped."""
        n = self.failures.get(key, 0) + 1
        self.failures[key] = n
        delay = min(BASE_DELAY * 2 ** (n - 1), MAX_DELAY)
        self.until[key] = now + delay
        return self.until[key]

    def succeed(self, key: str) -> None:
        """Forget the failures of ``key``."""
        self.failures.pop(key, None)
        self.until.pop(key, None)

    def active(self, now: datetime) -> dict[str, datetime]:
        """Keys still backed off at ``now``."""
        return {k: t for k, t in self.until.items() if t > now}
