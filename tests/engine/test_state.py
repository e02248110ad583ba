"""csctl's local state: atomic writes, the saved backoff, and the lock between two csctl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csctl.engine.state import (
    BACKOFF_FILE,
    LOCK_FILE,
    cycle_lock,
    load_backoff,
    save_backoff,
    write_atomically,
)
from csctl.errors import ExitCode, LockHeld
from csctl.plan.backoff import Backoff
from tests.lock_holder import HOLDER, lock_held


def leftovers(directory: Path) -> list[str]:
    """Temporary files a write may have left (they start with a dot)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture
def umask():
    """A strict umask for the test, restored after: the mode must not depend on it."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_write_creates_directories_and_sets_the_mode(tmp_path, umask):
    path = tmp_path / "a" / "b" / "state.json"
    write_atomically(path, b"one")
    assert path.read_bytes() == b"one"
    assert path.stat().st_mode & 0o777 == 0o600
    write_atomically(path, b"two", mode=0o644)  # wider than the umask allows: set, not masked
    assert path.stat().st_mode & 0o777 == 0o644
    assert leftovers(path.parent) == []


def test_write_replaces_the_file_by_a_rename(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b"old contents")
    with path.open("rb") as reader:  # a reader of the old file keeps seeing all of it
        write_atomically(path, b"new")
        assert reader.read() == b"old contents"
    assert path.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_write_replaces_a_symbolic_link_and_never_writes_through_it(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not csctl's")
    path = tmp_path / "state.json"
    path.symlink_to(target)
    write_atomically(path, b"csctl's")
    assert not path.is_symlink() and path.read_bytes() == b"csctl's"
    assert target.read_bytes() == b"not csctl's"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "text, not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_failed_rename_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "state.json"
    (path / "occupied").mkdir(parents=True)  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomically(path, b"new")
    assert path.is_dir() and leftovers(tmp_path) == []


def soon(minutes: int) -> datetime:
    # the loader may bound skips by the real clock, so these are near it
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def test_backoff_round_trip(tmp_path):
    backoff = Backoff(
        failures={"Hermes": 2, "Hermes/ami-1": 1}, until={"Hermes": soon(10), "Hermes/ami-1": soon(5)}
    )
    save_backoff(tmp_path, backoff)
    assert (tmp_path / BACKOFF_FILE).stat().st_mode & 0o777 == 0o600
    assert load_backoff(tmp_path) == backoff


def test_no_backoff_file_is_an_empty_backoff(tmp_path):
    assert load_backoff(tmp_path / "never-written") == Backoff()


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[]",
        '{"failures": 3, "until": {}}',
        '{"failures": {}}',
        '{"failures": {}, "until": []}',
    ],
)
def test_a_corrupt_backoff_file_is_an_empty_backoff(tmp_path, text):
    (tmp_path / BACKOFF_FILE).write_text(text)
    assert load_backoff(tmp_path) == Backoff()


def test_an_unreadable_backoff_time_does_not_stop_loading(tmp_path):
    data = {"failures": {"A": 1}, "until": {"A": "yesterday-ish"}}
    (tmp_path / BACKOFF_FILE).write_text(json.dumps(data))
    assert load_backoff(tmp_path).until == {}  # never an exception: the next cycle just retries sooner


def test_a_second_csctl_gets_lock_held_naming_the_holder(tmp_path):
    state = tmp_path / "state"
    with lock_held(state) as pid:  # a real second process
        with pytest.raises(LockHeld) as info, cycle_lock(state):
            pytest.fail("the lock was taken twice")
        assert info.value.message == f"another csctl run holds {state / LOCK_FILE} (pid {pid})"
        assert info.value.exit_code == ExitCode.LOCKED
    with cycle_lock(state):  # released with the holder's process
        assert (state / LOCK_FILE).read_text().split()[0] == str(os.getpid())


def test_a_holder_killed_mid_cycle_releases_the_lock(tmp_path):
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state), "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.kill()
    holder.communicate(timeout=30)
    with cycle_lock(state):
        pass
