"""What a use case needs from the world, in one object: the configuration, the pool, the
clouds, the clock, the state directory and the signing key.

Each is made on first use, so a command that never talks to a cloud never builds a
driver, and ``--dry-run`` never reads the signing key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from csctl.errors import ConfigError

if TYPE_CHECKING:  # not at run time: query_process_ahead is called before pydantic is imported
    from csctl.config import Config
    from csctl.context.tokens import SigningKey
    from csctl.model import Cloud, Pool


def _now() -> datetime:
    return datetime.now(UTC)


def query_process_ahead() -> AbstractContextManager[None]:
    """Start now the process the pool's first schedd query will run in (csctl/pool/child.py),
    for the duration of the ``with`` block: a command that will query the schedds enters it
    before it loads its configuration, so that the process's start-up overlaps that loading.
    The process gets its query only once the configuration is valid."""
    from csctl.pool.child import started_ahead

    return started_ahead()


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

                self._pool = HTCondorPool(self.config.pool)
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
