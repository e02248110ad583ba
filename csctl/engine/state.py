"""Small local state csctl keeps between runs (written atomically, harmless to lose), and
the lock that keeps two csctl commands from acting at once.

Every file here is read without following a symbolic link and written through a
temporary file and a rename. A file that is missing, unreadable or odd costs at most its
own entries, each named in a one-line warning; it never stops a cycle.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from csctl.errors import CsctlError, LockHeld
from csctl.plan.backoff import Backoff, sanitized
from csctl.plan.zones import sanitized_zones

BACKOFF_FILE = "backoff.json"
LOCK_FILE = "run.lock"
MAX_STATE_FILE = 1 << 20  # a state file is a few KB; more is not csctl's
MIN_FREE_BYTES = 1 << 20  # room for backoff.json, consoles and the lock's pid


class StateError(CsctlError):
    """The state directory cannot be used: nothing was done."""


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a
    rename, so a reader sees the old file or the new one, never half of one. A symbolic
    link at ``path`` is replaced, never followed."""
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


def read_state_file(path: Path) -> bytes | None:
    """A state file's bytes; None when it does not exist. OSError when it is a symbolic
    link, not a regular file, or larger than any file csctl writes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"{path} is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = f.read(MAX_STATE_FILE + 1)
    if len(data) > MAX_STATE_FILE:
        raise OSError(f"{path} is larger than {MAX_STATE_FILE} bytes")
    return data


def read_backoff(state_dir: Path, now: datetime) -> tuple[Backoff, list[str]]:
    """The saved backoff, with one warning per problem: an unreadable file gives an empty
    backoff, odd entries are dropped or clamped (see ``plan.backoff.sanitized``)."""
    path = state_dir / BACKOFF_FILE
    try:
        data = read_state_file(path)
        if data is None:
            return Backoff(), []
        raw: Any = json.loads(data)
        failures, until, problems = _backoff_entries(raw)
        zones = _zone_entries(raw.get("zones", {}), problems)
    except (OSError, ValueError, TypeError) as exc:
        return Backoff(), [f"{path}: ignored, cannot be read ({exc})"]
    backoff, clamped = sanitized(failures, until, now)
    backoff.zones, zones_clamped = sanitized_zones(zones, now)
    return backoff, [f"{path}: {p}" for p in problems + clamped + zones_clamped]


def _zone_entries(raw: Any, problems: list[str]) -> dict[str, datetime]:
    """The zones skipped for capacity; a file from before csctl kept them has none."""
    if not isinstance(raw, dict):
        problems.append("zones is not a table: ignored")
        return {}
    zones: dict[str, datetime] = {}
    for key, text in raw.items():
        read = _time(text)
        if read is None:
            problems.append(f"skip of zone {key!r} has no valid time: ignored")
        else:
            zones[str(key)] = read[0]
    return zones


def _backoff_entries(raw: Any) -> tuple[dict[str, object], dict[str, datetime], list[str]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("failures"), dict):
        raise ValueError("not a csctl backoff file")
    until_raw = raw.get("until")
    if not isinstance(until_raw, dict):
        raise ValueError("not a csctl backoff file")
    problems: list[str] = []
    until: dict[str, datetime] = {}
    for key, text in until_raw.items():
        read = _time(text)
        if read is None:
            problems.append(f"skip of {key!r} has no valid time: ignored")
            continue
        if not read[1]:
            problems.append(f"skip of {key!r} has no time zone: read as UTC")
        until[str(key)] = read[0]
    return {str(k): v for k, v in raw["failures"].items()}, until, problems


def _time(text: object) -> tuple[datetime, bool] | None:
    """An ISO 8601 time read back from a state file, read as UTC when it names no zone,
    and whether it named one; None when it is not a time."""
    try:
        when = datetime.fromisoformat(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (when, True) if when.tzinfo else (when.replace(tzinfo=UTC), False)


def load_backoff(state_dir: Path) -> Backoff:
    """The saved backoff as ``read_backoff`` reads it now, without its warnings."""
    return read_backoff(state_dir, datetime.now(UTC))[0]


def save_backoff(state_dir: Path, backoff: Backoff) -> None:
    """Save the backoff atomically."""
    data: dict[str, Any] = {
        "failures": backoff.failures,
        "until": {k: t.isoformat() for k, t in backoff.until.items()},
    }
    if backoff.zones.until:
        data["zones"] = {k: t.isoformat() for k, t in backoff.zones.until.items()}
    write_atomically(state_dir / BACKOFF_FILE, json.dumps(data, indent=1).encode())


def check_state_dir(state_dir: Path) -> None:
    """Make sure csctl can keep its state before it acts: the directory exists (created
    0700 if missing), is a directory, takes a new file, and has room. StateError says
    which of these failed."""
    if state_dir.exists() and not state_dir.is_dir():
        raise StateError(f"state directory {state_dir}: not a directory; nothing was done")
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=state_dir, prefix=".csctl-probe.")
        os.close(fd)
        os.unlink(probe)
        vfs = os.statvfs(state_dir)
    except OSError as exc:
        raise StateError(
            f"state directory {state_dir}: not usable ({exc.strerror or exc}); nothing was done",
            hint="give csctl a writable state_dir in the configuration",
        ) from None
    if vfs.f_bavail * vfs.f_frsize < MIN_FREE_BYTES:
        raise StateError(
            f"state directory {state_dir}: file system full; nothing was done",
            hint="free space there, or point state_dir elsewhere",
        )


@contextmanager
def state_lock(state_dir: Path, command: str = "run", wait_seconds: float = 0) -> Iterator[None]:
    """Hold STATE_DIR/run.lock while ``command`` acts; LockHeld, naming the holder's command
    and pid, if another csctl holds it (at once, or after ``wait_seconds`` of retrying).
    The state directory is checked first."""
    check_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise StateError(f"{path}: cannot open the lock ({exc.strerror or exc}); nothing was done") from None
    try:
        if not _flock(fd, wait_seconds):
            holder = os.pread(fd, 128, 0).decode(errors="replace").split(maxsplit=1) or ["?"]
            who = f"csctl {holder[1].strip()}" if len(holder) > 1 else "csctl"
            raise LockHeld(
                f"another {who} holds {path} (pid {holder[0]})",
                hint="csctl commands that act must not overlap; this one exits without acting",
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process dies


def _flock(fd: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)


def cycle_lock(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The lock as ``csctl run`` takes it."""
    return state_lock(state_dir, "run")


def acting(state_dir: Path, command: str, dry_run: bool) -> contextlib.AbstractContextManager[None]:
    """The lock for a command that acts; nothing for a dry run, which only reads."""
    return contextlib.nullcontext() if dry_run else state_lock(state_dir, command)


def keep_backoff(state_dir: Path, backoff: Backoff) -> list[str]:
    """Save the backoff after acting: a failure to save is a warning, never an exception,
    so the report of what was done is not lost (the next cycle merely retries sooner)."""
    try:
        save_backoff(state_dir, backoff)
    except OSError as exc:
        return [f"{state_dir / BACKOFF_FILE}: not saved ({exc.strerror or exc}); failures are forgotten"]
    return []


UNSEEN_FILE = "unseen.json"


def read_unseen(state_dir: Path, now: datetime) -> tuple[dict[str, datetime], list[str]]:
    """Since when each joined VM has had no startd ad, as the last cycle saw it (see
    ``plan.reconcile.unseen_memory``). A missing or odd file starts the count anew (a
    VM then waits longer before it is retired, never shorter); a time in the future
    reads as ``now``."""
    path = state_dir / UNSEEN_FILE
    try:
        data = read_state_file(path)
        raw: Any = json.loads(data) if data is not None else {}
        if not isinstance(raw, dict):
            raise ValueError("not a csctl unseen-VM file")
    except (OSError, ValueError) as exc:
        return {}, [f"{path}: ignored, cannot be read ({exc})"]
    since: dict[str, datetime] = {}
    for key, text in raw.items():
        read = _time(text)
        if read is not None:
            since[str(key)] = min(read[0], now)
    return since, []


def keep_unseen(state_dir: Path, since: dict[str, datetime]) -> list[str]:
    """Remember the unseen VMs for the next cycle; a failure to save is a warning."""
    data = json.dumps({k: t.isoformat() for k, t in sorted(since.items())}, indent=1).encode()
    try:
        write_atomically(state_dir / UNSEEN_FILE, data)
    except OSError as exc:
        return [f"{state_dir / UNSEEN_FILE}: not saved ({exc.strerror or exc})"]
    return []
