"""Another csctl process holding the state lock, for tests of what a second csctl does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDER = """
import sys
from pathlib import Path
from csctl.engine.state import state_lock

with state_lock(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@contextmanager
def lock_held(state_dir: Path, command: str = "run") -> Iterator[int]:
    """A second Python process holds ``state_dir``'s lock as ``command`` while the block
    runs; yields its pid. The process exits (releasing the lock) when the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_dir), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n", "the holder did not take the lock"
        yield holder.pid
    finally:
        holder.communicate("", timeout=30)  # closing its stdin ends it
    assert holder.returncode == 0
