"""Small local state csctl keeps between runs (written atomically, harmless to lose), and
the lock that keeps two csctl commands from acting at once."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from csctl.errors import LockHeld
from csctl.plan.backoff import Backoff

BACKOFF_FILE = "backoff.json"
LOCK_FILE = "run.lock"


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


@contextmanager
def cycle_lock(state_dir: Path) -> Iterator[None]:
    """Hold STATE_DIR/run.lock for the cycle; LockHeld at once if another csctl holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise LockHeld(
                f"another csctl run holds {path} (pid {holder})",
                hint="cycles must not overlap; this one exits without acting",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies
