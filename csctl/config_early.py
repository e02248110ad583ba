"""The pool's address, read from the configuration file before the whole file is validated.

``csctl demand`` sends its schedd query before it imports pydantic and validates the
configuration (about 0.25 s at start-up), so that the schedd groups the queue meanwhile. The
query needs five keys of ``[pool]``: ``name``, ``collector``, ``schedds``,
``condor_params`` and ``timeout``. They are read here with the same checks csctl.config
applies to them (config_guard's), and nothing else of the file is looked at.

Anything unexpected (no such file, not TOML, a key of the wrong type, a value csctl.config
would refuse) makes ``early_pool`` return None: the command then validates the whole file
first, as every other command does, and reports the problem the usual way. A value read here
serves only once the whole file has been validated and gave the same five values
(``EarlyPool.same_as``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csctl import config_guard as guard
from csctl.safefile import read_regular_file

if TYPE_CHECKING:
    from csctl.config import PoolConfig

KEYS = ("name", "collector", "schedds", "condor_params", "timeout")
# PoolConfig's bounds and default for timeout
TIMEOUT_RANGE = (20, 3600)
TIMEOUT_DEFAULT = 60


@dataclass(frozen=True)
class EarlyPool:
    """The five ``[pool]`` keys a schedd query needs, read ahead of the rest."""

    name: str
    collector: str
    schedds: tuple[str, ...] = ()
    condor_params: Mapping[str, str] = field(default_factory=dict)
    timeout: int = TIMEOUT_DEFAULT

    def same_as(self, pool: PoolConfig) -> bool:
        """Whether the validated configuration's pool has these same five values."""
        return (
            self.name == pool.name
            and self.collector == pool.collector
            and list(self.schedds) == list(pool.schedds)
            and dict(self.condor_params) == dict(pool.condor_params)
            and self.timeout == pool.timeout
        )


def early_pool(path: Path) -> EarlyPool | None:
    """The pool's address in the configuration file at ``path``, or None when the file or
    one of the five keys is anything but plainly valid (see the module's docstring)."""
    try:
        data = tomllib.loads(read_regular_file(path, guard.MAX_CONFIG_BYTES).decode("utf-8"))
        section = data.get("pool")
        if not isinstance(section, dict):
            return None
        keys = {key: section[key] for key in KEYS if key in section}
        if guard.scan({"pool": keys}):  # control characters, and the like
            return None
        return _checked(keys)
    except Exception:  # noqa: BLE001 - whatever it is, the whole file's validation says it
        return None


def _checked(keys: dict[str, Any]) -> EarlyPool | None:
    name, collector = keys.get("name"), keys.get("collector")
    schedds = keys.get("schedds", [])
    params = keys.get("condor_params", {})
    timeout = keys.get("timeout", TIMEOUT_DEFAULT)
    if not isinstance(name, str) or not guard.NAME.fullmatch(name):
        return None
    if not isinstance(collector, str):
        return None
    guard.check_collector(collector)  # raises on a bad one, as it does for csctl.config
    if not isinstance(schedds, list) or not all(isinstance(s, str) and s for s in schedds):
        return None
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return None
    for knob in params:
        guard.check_knob_name(knob)
    if type(timeout) is not int or not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        return None
    return EarlyPool(name, collector, tuple(schedds), dict(params), timeout)
