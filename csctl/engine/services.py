"""What a use case needs from the world, in one object: the configuration, the pool, the
clouds, the clock, the state directory and the signing key.

Each is made on first use, so a command that never talks to a cloud never builds a
driver, and ``--dry-run`` never reads the signing key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from csctl.errors import ConfigError

if TYPE_CHECKING:  # not at run time: idle_jobs_ahead is called before pydantic is imported
    from csctl.config import Config, PoolConfig
    from csctl.config_early import EarlyPool
    from csctl.context.tokens import SigningKey
    from csctl.model import Cloud, Pool
    from csctl.pool.child import LocatedQuery
    from csctl.pool.htcondor import HTCondorPool


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def idle_jobs_ahead(config_path: Path) -> Iterator[None]:
    """Send the idle-jobs query now, for the duration of the ``with`` block: a command sure
    to read the idle jobs (``csctl demand``) enters it before it loads its configuration.

    The query goes out before pydantic is imported and the file validated whole (about
    0.25 s), so the schedd groups the queue meanwhile. It needs only the pool's address,
    read with the same checks (csctl/config_early.py), and a child process that locates
    the schedd itself (csctl/pool/child.py ``query_located``): this process waits on no
    daemon before its configuration is valid. The answer serves only a pool of that same
    address (``Services.pool``), and only with a single schedd; otherwise the pool asks as
    usual. Without a plainly valid address, only the query's process starts ahead. A block
    that raises (an invalid configuration) kills the query it will not read.
    """
    global _early
    from csctl.config_early import early_pool
    from csctl.pool.child import end_queries_in_flight, started_ahead

    address = early_pool(config_path)
    with started_ahead(address.condor_params if address is not None else None):
        if address is not None and len(address.schedds) < 2:  # several: asked at once, later
            from csctl.pool.idle import query_ahead

            _early = (address, query_ahead(address))
        try:
            yield
        except BaseException:
            end_queries_in_flight()
            raise
        finally:
            left, _early = _early, None
            if left is not None:  # not taken by a pool
                left[1].abandon()


# The idle-jobs query idle_jobs_ahead sent, and the pool address it was sent with
_early: tuple[EarlyPool, LocatedQuery] | None = None


def _adopt_early(pool: HTCondorPool, config: PoolConfig) -> HTCondorPool:
    """``pool``, given the query idle_jobs_ahead sent if it was sent to this same pool."""
    global _early
    early, _early = _early, None
    if early is not None:
        if early[0].same_as(config):
            pool.adopt_idle_jobs(early[1])
        else:
            early[1].abandon()
    return pool


@dataclass
class Services:
    """The world as one use case sees it. ``source`` names the configuration in errors."""

    config: Config
    source: str = "csctl.toml"
    make_pool: Callable[[], Pool] | None = None
    make_clouds: Callable[[], Mapping[str, Cloud]] | None = None
    clock: Callable[[], datetime] = _now
    cloud_warnings: list[str] = field(default_factory=list, init=False)
    _pool: Pool | None = field(default=None, init=False, repr=False)
    _clouds: Mapping[str, Cloud] | None = field(default=None, init=False, repr=False)

    @property
    def pool(self) -> Pool:
        """The pool adapter (the htcondor bindings unless one was given)."""
        if self._pool is None:
            if self.make_pool is None:
                from csctl.pool.htcondor import HTCondorPool

                self._pool = _adopt_early(HTCondorPool(self.config.pool), self.config.pool)
            else:
                self._pool = self.make_pool()
        return self._pool

    @property
    def clouds(self) -> Mapping[str, Cloud]:
        """A driver for every configured cloud (a disabled one is listed and emptied,
        never booted on), and for every cloud that left the configuration while csctl
        still had VMs there (listed and emptied too; see engine/departed.py)."""
        if self._clouds is None:
            if self.make_clouds is None:
                from csctl.clouds.registry import make_cloud
                from csctl.engine.departed import departed_clouds

                departed, self.cloud_warnings = departed_clouds(self.config)
                configured = {n: make_cloud(n, c) for n, c in self.config.clouds.items()}
                self._clouds = {**departed, **configured}
            else:
                self._clouds = self.make_clouds()
        return self._clouds

    def begin_idle_jobs(self) -> None:
        """Have the pool start reading its idle jobs now, if it can (HTCondorPool), for a
        use case sure to ask for them: its ``idle_jobs`` then returns that answer."""
        begin = getattr(self.pool, "begin_idle_jobs", None)
        if begin is not None:
            begin()

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    def now(self) -> datetime:
        """The clock's time, timezone-aware."""
        return self.clock()

    def signing_key(self, purpose: str) -> SigningKey:
        """The pool's signing key; ConfigError naming ``purpose`` when none is configured."""
        from csctl.context.tokens import read_signing_key

        path = self.config.pool.signing_key
        if path is None:
            raise ConfigError([f"{self.source}: pool.signing_key: required to {purpose}"])
        return read_signing_key(path)
