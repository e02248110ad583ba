"""Several image tests at once, one thread each, their HTCondor calls serialised."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from csctl.config import Config
from csctl.context.tokens import SigningKey
from csctl.engine.imagetest.runner import run_image_test
from csctl.model import Cloud, DrainTarget, StartdSlot
from csctl.model.imagetest import DrainPool, ProbeJob, ProbeQueue, ProbeStatus
from csctl.plan.imagetest import ImageTestReport, ImageTestSpec


def run_image_tests(
    specs: Sequence[ImageTestSpec],
    config: Config,
    clouds: Mapping[str, Cloud],
    pool: DrainPool,
    probes: ProbeQueue,
    pool_key: SigningKey,
    **options: Any,
) -> list[ImageTestReport]:
    """Run several tests at once, one thread each (``options`` as for run_image_test).

    HTCondor calls are serialised (the bindings' configuration is process-wide). On
    KeyboardInterrupt every test is told to stop and cleans up; this waits for all of
    them (a second Ctrl-C too) and returns their reports, marked interrupted.
    """
    lock, stop = threading.Lock(), options.pop("stop", None) or threading.Event()
    locked_pool, locked_probes = LockedPool(pool, lock), LockedProbes(probes, lock)
    executor = ThreadPoolExecutor(max_workers=max(1, len(specs)), thread_name_prefix="image-test")
    futures: list[Future[ImageTestReport]] = [
        executor.submit(
            run_image_test,
            spec,
            config,
            clouds[spec.cloud],
            locked_pool,
            locked_probes,
            pool_key,
            stop=stop,
            **options,
        )
        for spec in specs
    ]
    while True:
        try:
            while not all(f.done() for f in futures):
                wait_futures(futures, timeout=0.5)
            break
        except KeyboardInterrupt:
            stop.set()  # each test ends its phase, cleans up and reports
    executor.shutdown(wait=True)
    return [f.result() for f in futures]


class LockedPool:
    """A DrainPool whose calls hold ``lock``: one HTCondor call at a time."""

    def __init__(self, pool: DrainPool, lock: threading.Lock) -> None:
        self._pool, self._lock = pool, lock

    def csctl_slots(self) -> list[StartdSlot]:
        """As DrainPool.csctl_slots, under the lock."""
        with self._lock:
            return self._pool.csctl_slots()

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """As DrainPool.drain, under the lock."""
        with self._lock:
            return self._pool.drain(targets, reason)


class LockedProbes:
    """A ProbeQueue whose calls hold ``lock``: one HTCondor call at a time."""

    def __init__(self, probes: ProbeQueue, lock: threading.Lock) -> None:
        self._probes, self._lock = probes, lock

    def submit(self, job: ProbeJob) -> str:
        """As ProbeQueue.submit, under the lock."""
        with self._lock:
            return self._probes.submit(job)

    def status(self, job_id: str) -> ProbeStatus:
        """As ProbeQueue.status, under the lock."""
        with self._lock:
            return self._probes.status(job_id)

    def output(self, job_id: str) -> str:
        """As ProbeQueue.output, under the lock."""
        with self._lock:
            return self._probes.output(job_id)

    def remove(self, job_id: str) -> None:
        """As ProbeQueue.remove, under the lock."""
        with self._lock:
            self._probes.remove(job_id)

    def nudge(self) -> None:
        """As ProbeQueue.nudge, under the lock."""
        with self._lock:
            self._probes.nudge()
