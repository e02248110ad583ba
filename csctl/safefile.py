"""Reading a small file an operator named, without trusting what is at that path.

A configuration file or a signing key may turn out to be a FIFO (``open`` would wait for
a writer forever), ``/dev/zero`` (``read`` would never end), a directory, or a symbolic
link. ``read_regular_file`` opens without blocking, looks at what it opened (``fstat``,
so nothing can be swapped in between the look and the read), and reads at most a bound.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path


class FileRefused(Exception):
    """The path names something csctl will not read; ``reason`` says why, as a phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
    stat.S_IFSOCK: "a socket",
}


def describe_size(limit: int) -> str:
    """``limit`` bytes as an operator reads it: 1 MB, 64 kB, 100 bytes."""
    for unit, size in (("MB", 1 << 20), ("kB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def read_regular_file(
    path: Path,
    limit: int,
    *,
    follow_symlinks: bool = True,
    check: Callable[[os.stat_result], None] | None = None,
) -> bytes:
    """The contents of the regular file at ``path``, at most ``limit`` bytes.

    Raises FileRefused when ``path`` is not a regular file, is a symbolic link (with
    ``follow_symlinks=False``), is larger than ``limit``, or when ``check`` (called with the
    opened file's status before anything is read) raises it; OSError when it cannot be
    opened or read; ValueError for a path with a NUL byte.
    """
    # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks and path.is_symlink():
            raise FileRefused("is a symbolic link") from None
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            kind = _KINDS.get(stat.S_IFMT(status.st_mode), "not a regular file")
            raise FileRefused(f"is {kind}, not a regular file" if kind.startswith("a ") else kind)
        if check is not None:
            check(status)
        if status.st_size > limit:
            raise FileRefused(f"is larger than {describe_size(limit)} ({status.st_size} bytes)")
        data = _read_at_most(fd, limit + 1)
        if len(data) > limit:  # it grew after fstat
            raise FileRefused(f"is larger than {describe_size(limit)}")
        return data
    finally:
        os.close(fd)


def _read_at_most(fd: int, count: int) -> bytes:
    chunks = []
    while count > 0:
        chunk = os.read(fd, min(count, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)
