"""Small local state csctl keeps between runs: written atomically, harmless to lose."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

BACKOFF_FILE = "backoff.json"
BASE_DELAY = timedelta(minutes=2)
MAX_DELAY = timedelta(hours=2)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a
    rename, so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def load_backoff(state_dir: Path) -> Backoff:
    """The saved backoff, or an empty one when the file is missing or unreadable."""
    try:
        raw: Any = json.loads((state_dir / BACKOFF_FILE).read_text())
        return Backoff(
            failures={str(k): int(v) for k, v in raw["failures"].items()},
            until={str(k): datetime.fromisoformat(v) for k, v in raw["until"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Backoff()


def save_backoff(state_dir: Path, backoff: Backoff) -> None:
    """Save the backoff atomically."""
    data = {
        "failures": backoff.failures,
        "until": {k: t.isoformat() for k, t in backoff.until.items()},
    }
    write_atomically(state_dir / BACKOFF_FILE, json.dumps(data, indent=1).encode())
