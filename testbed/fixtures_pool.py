"""pytest plugin: the real HTCondor test pool (``testbed/pool.py``) as fixtures.

``condor_pool`` (session) brings the pool up or reuses a running one, and gives
tests a :class:`CondorPool`; ``clean_queue`` (function) empties the job queue
before and after a test. The pool needs root: elsewhere the tests are skipped,
in CI (``CI=true``) they fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testbed import pool

_NEEDS_ROOT = "the HTCondor test pool needs root (debootstrap, chroot): run the tests as root"


def pytest_configure(config: pytest.Config) -> None:
    """Point htcondor at the pool's client config before any test imports it.

    htcondor reads its configuration once, at import, which may happen while
    test modules are collected: long before a fixture runs.
    """
    if os.geteuid() == 0:
        p = pool.paths()
        pool.write_client_config(p)
        os.environ.update(pool.client_env(p))


@dataclass
class CondorPool:
    """A running test pool, as tests see it. Submits as ``user``, never as root."""

    paths: pool.Paths
    collector: str = pool.COLLECTOR
    user: str = pool.USER
    trust_domain: str = pool.POOL_NAME
    filesystem_domain: str = pool.POOL_NAME
    startds: list[pool.Startd] = field(default_factory=list)

    @property
    def pool_name(self) -> str:
        """The collector's name; also the trust, UID and filesystem domain."""
        return pool.POOL_NAME

    @property
    def root(self) -> Path:
        """The chroot with HTCondor."""
        return self.paths.root

    @property
    def config_path(self) -> Path:
        """The host-side client config (``CONDOR_CONFIG``)."""
        return self.paths.client_config

    @property
    def client_env(self) -> dict[str, str]:
        """Environment a host process (e.g. a csctl subprocess) needs to use the pool."""
        return pool.client_env(self.paths)

    @property
    def signing_key_path(self) -> Path:
        """The pool's IDTOKEN signing key (``passwords.d/POOL``), host path."""
        return self.paths.signing_key

    @property
    def jobs_dir(self) -> str:
        """Default job Iwd: the same path on the host and in the chroot."""
        return self.paths.jobs

    def schedd(self) -> Any:
        """An ``htcondor2.Schedd`` for the pool's only schedd."""
        import htcondor2

        ads = htcondor2.Collector(self.collector).query(htcondor2.AdType.Schedd)
        return htcondor2.Schedd(ads[0])

    def submit(self, description: dict[str, str], count: int = 1) -> int:
        """Submit *count* jobs as ``csctl-user``; returns the cluster id.

        Keys and values are submit language: ``"+VMMem": "18000"`` and
        ``"MY.VMMem": "18000"`` both work; string values need quotes
        (``"+VMType": '"pandacernvm"'``). ``initialdir`` defaults to
        :attr:`jobs_dir`. The client authenticates with csctl-user's IDTOKEN.
        """
        import htcondor2

        description = {"initialdir": self.jobs_dir, **description}
        result = self.schedd().submit(htcondor2.Submit(description), count=count)
        return int(result.cluster())

    def remove_all_jobs(self, timeout: float = 60) -> None:
        """Remove every job and wait until the queue is empty."""
        import htcondor2

        schedd = self.schedd()
        schedd.act(htcondor2.JobAction.Remove, "true")
        started = time.monotonic()
        while jobs := schedd.query(projection=["ClusterId"]):
            waited = time.monotonic() - started
            if waited > timeout:
                raise TimeoutError(f"{len(jobs)} jobs still in the queue after {timeout} s")
            if waited > 5:  # a removed job whose startd died never leaves by itself
                schedd.act(htcondor2.JobAction.RemoveX, "JobStatus == 3")
            time.sleep(0.3)

    def start_startd(self, name: str, extra_config: str = "") -> pool.Startd:
        """Start an extra startd ("VM") named *name*: see :func:`testbed.pool.start_startd`.

        It is stopped at the end of the session at the latest.
        """
        startd = pool.start_startd(name, extra_config, base=self.paths.base)
        self.startds.append(startd)
        return startd

    def stop_startds(self) -> None:
        """Stop every startd this object started (peacefully: jobs are removed first)."""
        if any(s.running() for s in self.startds):
            self.remove_all_jobs()
        for startd in self.startds:
            startd.stop(timeout=30)
        self.startds.clear()


def _require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(_NEEDS_ROOT, pytrace=False)
        pytest.skip(_NEEDS_ROOT)


@contextlib.contextmanager
def _one_session_at_a_time(p: pool.Paths) -> Iterator[None]:
    # There is one pool (one port 9618): test sessions that share it would
    # remove each other's jobs and startds, so a second session waits.
    p.run.mkdir(parents=True, exist_ok=True)
    with open(p.run / "session.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("condor_pool: waiting for another test session to finish", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def condor_pool() -> Iterator[CondorPool]:
    """The HTCondor test pool: started (or reused) once per session.

    A pool this fixture started is stopped at the end of the session; a pool
    that was already running (``python3 -m testbed.pool up``) is left running.
    """
    _require_root()
    p = pool.paths()
    with _one_session_at_a_time(p):
        was_running = pool.pool_answers(p)
        pool.up(p.base)
        os.environ.update(pool.client_env(p))
        if "htcondor2" in sys.modules:  # imported before our config was in place
            sys.modules["htcondor2"].reload_config()
        condor = CondorPool(p)
        try:
            yield condor
        finally:
            if was_running:  # leave it as we found it, without our startds
                condor.stop_startds()
            else:
                pool.down(p.base)  # stops our startds too


@pytest.fixture
def clean_queue(condor_pool: CondorPool) -> Iterator[CondorPool]:
    """The pool with an empty job queue before and after the test."""
    condor_pool.remove_all_jobs()
    yield condor_pool
    condor_pool.remove_all_jobs()
