"""The state directory under real faults: read-only, full, odd files, a lock held elsewhere.

The file systems are real tmpfs mounts (root only, as the test bed is), so the kernel
itself refuses the writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csctl.engine.state import (
    BACKOFF_FILE,
    StateError,
    check_state_dir,
    keep_backoff,
    read_backoff,
    state_lock,
)
from csctl.errors import LockHeld
from csctl.plan.backoff import MAX_DELAY, MAX_FAILURES, Backoff

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB tmpfs of our own: fill it or make it read-only for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _read_only(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


def _fill(mnt: Path) -> None:
    with open(mnt / "filler", "wb") as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()


def test_a_read_only_state_directory_is_refused_before_acting(tmpfs):
    state = tmpfs / "state"
    state.mkdir()
    _read_only(tmpfs)
    with pytest.raises(StateError) as info:
        check_state_dir(state)
    assert (
        info.value.message == f"state directory {state}: not usable (Read-only file system); nothing was done"
    )
    with pytest.raises(StateError), state_lock(state, "boot"):
        pytest.fail("a command acted without a usable state directory")


def test_a_full_state_directory_is_refused_before_acting(tmpfs):
    _fill(tmpfs)
    with pytest.raises(StateError) as info:
        check_state_dir(tmpfs)
    assert "nothing was done" in info.value.message


def test_saving_the_backoff_on_a_full_disk_is_a_warning_not_an_exception(tmpfs):
    _fill(tmpfs)
    backoff = Backoff()
    backoff.fail("Hermes", NOW)
    warnings = keep_backoff(tmpfs, backoff)
    assert len(warnings) == 1 and warnings[0].startswith(f"{tmpfs / BACKOFF_FILE}: not saved (")
    assert not [p for p in tmpfs.iterdir() if p.name.startswith(".backoff")]  # no half-written file


@pytest.mark.parametrize(
    ("entry", "expected_until", "warning"),
    [
        (
            {"failures": {"A": 1}, "until": {"A": "2026-11-30T12:05:00"}},
            NOW + timedelta(minutes=5),
            "no time zone",
        ),
        ({"failures": {"A": 1}, "until": {"A": "9999-12-31T00:00:00+00:00"}}, NOW + MAX_DELAY, "clamped"),
    ],
)
def test_odd_backoff_entries_are_clamped_with_a_warning(tmp_path, entry, expected_until, warning):
    (tmp_path / BACKOFF_FILE).write_text(json.dumps(entry))
    backoff, warnings = read_backoff(tmp_path, NOW)
    assert backoff.until == {"A": expected_until}
    assert len(warnings) == 1 and warning in warnings[0] and "'A'" in warnings[0]


def test_a_huge_failure_count_is_clamped_and_still_backs_off_for_at_most_the_cap(tmp_path):
    (tmp_path / BACKOFF_FILE).write_text(json.dumps({"failures": {"A": 10**4000}, "until": {}}))
    backoff, warnings = read_backoff(tmp_path, NOW)
    assert backoff.failures == {"A": MAX_FAILURES}
    assert warnings == [f"{tmp_path / BACKOFF_FILE}: failure count of 'A' clamped to {MAX_FAILURES}"]
    backoff.fail("A", NOW)
    assert backoff.active(NOW)["A"] == NOW + MAX_DELAY


def test_an_integer_too_long_to_parse_costs_the_file_not_the_cycle(tmp_path):
    (tmp_path / BACKOFF_FILE).write_text('{"failures": {"A": 1' + "0" * 5000 + '}, "until": {}}')
    backoff, warnings = read_backoff(tmp_path, NOW)
    assert backoff == Backoff() and warnings[0].startswith(
        f"{tmp_path / BACKOFF_FILE}: ignored, cannot be read"
    )


def test_counts_that_are_not_counts_are_dropped(tmp_path):
    data = {"failures": {"A": "many", "B": True, "C": -3, "D": 2}, "until": {}}
    (tmp_path / BACKOFF_FILE).write_text(json.dumps(data))
    backoff, warnings = read_backoff(tmp_path, NOW)
    assert backoff.failures == {"D": 2}
    assert len(warnings) == 3


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "huge"])
def test_a_backoff_file_that_is_not_a_small_regular_file_is_ignored_not_followed(tmp_path, kind):
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"failures": {"A": 1}, "until": {"A": NOW.isoformat()}}))
    path = tmp_path / BACKOFF_FILE
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b" " * (2 << 20))
    started = time.monotonic()
    backoff, warnings = read_backoff(tmp_path, NOW)
    assert time.monotonic() - started < 5  # a FIFO with no writer must not block
    assert backoff == Backoff() and len(warnings) == 1 and "ignored" in warnings[0]


HOLD_FOR_A_SECOND = """
import sys, time
from pathlib import Path
from csctl.engine.state import state_lock
with state_lock(Path(sys.argv[1]), "run"):
    print("held", flush=True)
    time.sleep(1.5)
"""


def test_a_waiting_command_takes_the_lock_once_the_holder_is_done(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOR_A_SECOND, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(LockHeld), state_lock(tmp_path, "image-test"):
        pytest.fail("taken while held")
    started = time.monotonic()
    with state_lock(tmp_path, "image-test", wait_seconds=30):
        # the holder keeps it 1.5 s after saying so: we waited for it rather than failing
        assert time.monotonic() - started > 0.5
        assert (tmp_path / "run.lock").read_text() == f"{os.getpid()} image-test\n"
    holder.wait(timeout=30)


def test_the_holder_is_named_with_its_whole_command(tmp_path):
    from tests.lock_holder import lock_held

    with (
        lock_held(tmp_path, "join-check --fix") as pid,
        pytest.raises(LockHeld) as info,
        state_lock(tmp_path, "retire"),
    ):
        pytest.fail("taken while held")
    assert info.value.message == f"another csctl join-check --fix holds {tmp_path / 'run.lock'} (pid {pid})"
