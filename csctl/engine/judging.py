"""A large queue judged in parts, at the same time, in forked child processes.

Judging a job group (building its ad, evaluating what it asks and its Requirements
against every VM type) is CPU work in one thread: 100,000 distinct jobs take about 12 s
of one CPU. Groups are judged independently of each other, so the queue is cut into
runs, one per CPU (up to ``MAX_PARTS``): this process judges the first and a forked
child each of the others, and the judgements are merged in queue order, which gives what
judging the whole queue here gives (tests/engine/test_judging.py).

A child sees the groups as they were when it was forked (copy-on-write: nothing is
copied or sent to it) and sends back only its judgement, pickled, through a pipe. A
child is forked only while this process runs no other thread (a fork copies one thread,
and a lock another one held would stay locked in the child). A child that fails, or
does not answer in time, is killed and its run is judged here, as it would have been
without it, and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from csctl.config import Config
from csctl.model import JobGroup
from csctl.plan.demand import Judged, judge
from csctl.plan.queue import JsonQueue, cut

log = logging.getLogger(__name__)

MAX_PARTS = 4
# fewer groups are judged in well under a second: a fork would cost more than it saves
MIN_GROUPS = 4_000
# a child gets this long, or four times what this process took for its own run
MIN_WAIT_S = 60.0


def judge_apart(groups: Iterable[JobGroup], config: Config, parts: int | None = None) -> Judged:
    """``judge(groups, config)``, with a large queue cut into runs judged at once, one
    per available CPU (or ``parts``, whatever the queue's size); a queue too small, or a
    process that cannot fork safely, is judged here in one piece."""
    count = (_parts(groups) if parts is None else parts) if _may_fork() else 1
    if count < 2 or not isinstance(groups, (JsonQueue, Sequence)):
        return judge(groups, config)
    if isinstance(groups, JsonQueue):
        runs = groups.parts(count)
    else:
        runs = [(run, len(run)) for run in cut(groups, count)]
    children: list[_Child] = []
    try:
        for run, _ in runs[1:]:
            children.append(_fork(run, config))
        started = time.monotonic()
        judged = judge(runs[0][0], config)
        wait = max(MIN_WAIT_S, 4 * (time.monotonic() - started))
        for child, (run, size) in zip(children, runs[1:], strict=True):
            later = child.result(wait)
            if later is None:
                judged.warnings.append(
                    f"judging {size} job groups in a child process failed ({child.failure}); "
                    "csctl judged them itself"
                )
                later = judge(run, config)
            judged.merge(later)
        return judged
    finally:
        for child in children:
            child.reap()


def _parts(groups: Iterable[JobGroup]) -> int:
    """How many runs to cut ``groups`` into: one per CPU this process may use."""
    if not isinstance(groups, (JsonQueue, Sequence)) or len(groups) < MIN_GROUPS:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_PARTS, cpus))


def _may_fork() -> bool:
    """Whether a fork copies all there is: this process runs no other thread."""
    return hasattr(os, "fork") and threading.active_count() == 1


@dataclass
class _Child:
    """A forked child judging one run; its judgement comes back through ``pipe``."""

    pid: int
    pipe: int
    failure: str = ""
    reaped: bool = False

    def result(self, wait: float) -> Judged | None:
        """The child's judgement, or None (``failure`` says why) when it ended without one
        or gave none within ``wait`` seconds (it is then killed)."""
        data = self._read(time.monotonic() + wait)
        status = self.reap(kill=data is None)
        if data is None:
            return None
        if status != 0:
            self.failure = _ended(status)
            return None
        try:
            judged = pickle.loads(data)  # noqa: S301 - written by this very program's fork
        except Exception as exc:  # noqa: BLE001 - a truncated answer is no answer
            self.failure = f"unreadable answer: {exc}"
            return None
        return judged if isinstance(judged, Judged) else None

    def _read(self, deadline: float) -> bytes | None:
        chunks: list[bytes] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.pipe], [], [], left)[0]:
                    self.failure = "no answer in time"
                    return None
                chunk = os.read(self.pipe, 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            os.close(self.pipe)

    def reap(self, kill: bool = True) -> int:
        """Wait for the child (killed first unless it is known to have ended): its wait status."""
        if self.reaped:
            return 0
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.reaped = True
        return os.waitpid(self.pid, 0)[1]


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _fork(run: Iterable[JobGroup], config: Config) -> _Child:
    """Fork a child that judges ``run`` and writes its pickled judgement to a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        status = 1
        try:
            os.close(read_end)
            data = pickle.dumps(judge(run, config), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
            status = 0
        except BaseException:  # noqa: BLE001, S110 - the parent judges the run itself
            pass
        finally:
            os._exit(status)
    os.close(write_end)
    log.debug("judging job groups in child process %d", pid)
    return _Child(pid, read_end)
