"""Clouds that left the configuration, and the VMs csctl still has there.

Taking a cloud out of csctl.toml must not orphan its VMs. csctl keeps a small record,
STATE_DIR/clouds.json, of each cloud's driver section as last configured (driver name and
its own keys: endpoints, profile or clouds.yaml names, never a credential, which stays
where its ecosystem keeps it). A cloud that is in the record but no longer configured is
still listed each cycle; its VMs are reported and retired like those of a disabled
cloud, and once it lists none the record forgets it. Losing the record loses only this
reminder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from csctl.config import Config
from csctl.engine.state import read_state_file, write_atomically
from csctl.errors import CsctlError
from csctl.model import Cloud

CLOUDS_FILE = "clouds.json"


def _record(config: Config) -> tuple[dict[str, dict[str, Any]], list[str]]:
    path = config.state_dir / CLOUDS_FILE
    try:
        data = read_state_file(path)
        raw = json.loads(data) if data is not None else {}
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise ValueError("not a csctl cloud record")
    except (OSError, ValueError) as exc:
        return {}, [f"{path}: ignored, cannot be read ({exc})"]
    return {str(k): v for k, v in raw.items()}, []


def departed_clouds(config: Config) -> tuple[dict[str, Cloud], list[str]]:
    """A driver for every recorded cloud that is no longer configured, and one line for
    each that cannot be built (its VMs, if any, are then csctl's to report, not to reach)."""
    from csctl.clouds.registry import driver_module

    record, problems = _record(config)
    clouds: dict[str, Cloud] = {}
    for name, section in sorted(record.items()):
        if name in config.clouds:
            continue
        options = {k: v for k, v in section.items() if k != "driver"}
        try:
            module = driver_module(str(section.get("driver")))
            clouds[name] = module.Driver(name, module.Settings.model_validate(options))
        except (CsctlError, ValueError) as exc:
            problems.append(
                f"cloud {name} left the configuration but cannot be listed ({_first_line(exc)}); "
                f"remove its VMs by hand, then its entry from {config.state_dir / CLOUDS_FILE}"
            )
    return clouds, problems


def remember_clouds(config: Config, still_used: Iterable[str]) -> list[str]:
    """Record every configured cloud's driver section, and keep the departed clouds that
    still list csctl VMs (``still_used``); a failure to save is a warning."""
    record, _ = _record(config)
    keep = {name: record[name] for name in set(still_used) if name in record and name not in config.clouds}
    for name, cloud in config.clouds.items():
        keep[name] = {"driver": cloud.driver, **cloud.driver_options}
    path = config.state_dir / CLOUDS_FILE
    try:
        write_atomically(path, json.dumps(keep, indent=1, sort_keys=True, default=str).encode())
    except OSError as exc:
        return [f"{path}: not saved ({exc.strerror or exc})"]
    return []


def _first_line(exc: Exception) -> str:
    message = exc.message if isinstance(exc, CsctlError) else str(exc)
    return (message.strip().splitlines() or [type(exc).__name__])[0][:200]
