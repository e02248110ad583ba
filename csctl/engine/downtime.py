"""Declared downtimes: kept in STATE_DIR/downtimes.json, changed under the state lock, and
published to the collector as ``CsctlDowntime`` ads so that users see them too.

Losing the file loses the declarations, never a job or a VM; a file csctl cannot read is
never overwritten (adding or removing refuses, naming it), while a cycle reads what it
can and warns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from csctl.config import Config
from csctl.engine.services import Services
from csctl.engine.state import read_state_file, state_lock, write_atomically
from csctl.errors import CsctlError, InputError
from csctl.model import Pool
from csctl.plan.demand import Demand
from csctl.plan.downtime import SCHEMA, Downtime, Effects, Phase, effects, keep_out, phase
from csctl.plan.downtime_rules import Request, build, from_json, to_json
from csctl.plan.gocdb import GocdbError, import_downtimes

DOWNTIME_FILE = "downtimes.json"
AD_TYPE = "CsctlDowntime"
LOCK_WAIT_SECONDS = 30  # a cycle holds the lock for seconds; a declaration may wait for it
AD_SLACK_SECONDS = 300  # an ad outlives its window's end by this much if csctl stops running


@dataclass
class Stored:
    """The downtimes file: its downtimes and the next id to give."""

    downtimes: list[Downtime] = field(default_factory=list)
    next_id: int = 1


def _parse(data: bytes) -> tuple[Stored, list[str]]:
    raw: Any = json.loads(data)
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA or not isinstance(raw.get("downtimes"), list):
        raise ValueError("not a csctl downtimes file")
    stored, problems = Stored(next_id=int(raw.get("next_id", 1))), []
    for entry in raw["downtimes"]:
        try:
            stored.downtimes.append(from_json(entry))
        except (ValueError, TypeError, CsctlError) as exc:
            problems.append(f"entry {str(entry)[:60]} ignored ({getattr(exc, 'message', exc)})")
    return stored, problems


def read_downtimes(state_dir: Path) -> tuple[list[Downtime], list[str]]:
    """The declared downtimes, with one warning per problem (a cycle goes on without them)."""
    path = state_dir / DOWNTIME_FILE
    try:
        data = read_state_file(path)
        if data is None:
            return [], []
        stored, problems = _parse(data)
    except (OSError, ValueError) as exc:
        return [], [f"{path}: ignored, cannot be read ({exc})"]
    return stored.downtimes, [f"{path}: {p}" for p in problems]


def read_downtimes_file(path: Path) -> list[Downtime]:
    """The downtimes of a csctl downtimes file the operator named (``simulate
    --downtimes``): InputError naming the file for one that cannot be read or any entry
    that is not a downtime, since a replay without it would answer another question."""
    try:
        data = read_state_file(path)
        if data is None:
            raise InputError(f"{path}: no such file")
        raw: Any = json.loads(data)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a csctl downtimes file ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA or not isinstance(raw.get("downtimes"), list):
        raise InputError(f"{path}: not a csctl downtimes file (schema {SCHEMA})")
    found = []
    for number, entry in enumerate(raw["downtimes"], 1):
        try:
            found.append(from_json(entry))
        except (ValueError, TypeError, CsctlError) as exc:
            raise InputError(f"{path}: downtime {number}: {getattr(exc, 'message', exc)}") from None
    return found


def _load_strict(state_dir: Path) -> Stored:
    path = state_dir / DOWNTIME_FILE
    try:
        data = read_state_file(path)
        return Stored() if data is None else _parse(data)[0]
    except (OSError, ValueError) as exc:
        raise CsctlError(
            f"{path}: cannot be read ({exc}); nothing was changed", hint="fix or move it"
        ) from None


def _save(state_dir: Path, stored: Stored) -> None:
    data = {"schema": SCHEMA, "next_id": stored.next_id, "downtimes": [to_json(d) for d in stored.downtimes]}
    write_atomically(state_dir / DOWNTIME_FILE, json.dumps(data, indent=1).encode())


@dataclass
class Change:
    """What a downtime command changed, and the warnings of publishing it."""

    added: list[Downtime] = field(default_factory=list)
    removed: list[Downtime] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def add_downtime(services: Services, request: Request) -> Change:
    """Declare one downtime (checked against the configuration and the others), then
    publish the declared downtimes to the collector."""
    now = services.now()
    with state_lock(services.state_dir, "downtime", wait_seconds=LOCK_WAIT_SECONDS):
        stored = _load_strict(services.state_dir)
        downtime = build(request, services.config, stored.downtimes, str(stored.next_id), now)
        stored.downtimes.append(downtime)
        stored.next_id += 1
        _save(services.state_dir, stored)
    return Change(added=[downtime], warnings=publish(services, stored.downtimes, now))


def remove_downtime(services: Services, downtime_id: str) -> Change:
    """Remove the downtime ``downtime_id`` and withdraw its ad."""
    now = services.now()
    with state_lock(services.state_dir, "downtime", wait_seconds=LOCK_WAIT_SECONDS):
        stored = _load_strict(services.state_dir)
        gone = [d for d in stored.downtimes if d.id == downtime_id]
        if not gone:
            known = ", ".join(d.id for d in stored.downtimes) or "none declared"
            raise InputError(f"no downtime {downtime_id!r} (known: {known})")
        stored.downtimes = [d for d in stored.downtimes if d.id != downtime_id]
        _save(services.state_dir, stored)
    return Change(removed=gone, warnings=publish(services, stored.downtimes, now, withdraw=gone))


def import_gocdb(services: Services, path: Path) -> Change:
    """Declare the downtimes of a GOCDB ``get_downtime`` export on csctl's clouds. A
    downtime imported before (same GOCDB id and cloud) is replaced by its new version."""
    try:
        with path.open("rb") as f:
            imported = import_downtimes(f.read(), services.config)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except GocdbError as exc:
        raise InputError(f"{path}: {exc}") from None
    now = services.now()
    with state_lock(services.state_dir, "downtime", wait_seconds=LOCK_WAIT_SECONDS):
        stored = _load_strict(services.state_dir)
        fresh = {d.id for d in imported.downtimes}
        replaced = [d for d in stored.downtimes if d.id in fresh]
        stored.downtimes = [d for d in stored.downtimes if d.id not in fresh] + imported.downtimes
        _save(services.state_dir, stored)
    change = Change(added=imported.downtimes, skipped=imported.skipped)
    change.warnings = publish(services, stored.downtimes, now, withdraw=replaced)
    return change


@dataclass(frozen=True)
class Listed:
    """One declared downtime and where it stands now."""

    downtime: Downtime
    phase: Phase
    window: tuple[datetime, datetime] | None


def list_downtimes(services: Services) -> tuple[list[Listed], list[str]]:
    """Every declared downtime with its phase now, and the file's warnings."""
    now = services.now()
    downtimes, warnings = read_downtimes(services.state_dir)
    lead = services.config.policy.downtime_drain_ahead_minutes
    return [Listed(d, phase(d, now, lead), d.window(now)) for d in downtimes], warnings


def downtime_ad(d: Downtime, config: Config, now: datetime) -> dict[str, Any] | None:
    """The collector ad of a downtime with a window left; None once it is over."""
    win = d.window(now)
    if win is None:
        return None
    lifetime = int((win[1] - now).total_seconds()) + AD_SLACK_SECONDS
    return {
        "MyType": AD_TYPE,
        "Name": ad_name(d, config),
        "CsctlPool": config.pool.name,
        "CsctlDowntimeId": d.id,
        "Scope": d.scope,
        "Severity": d.severity.value,
        "Start": int(win[0].timestamp()),
        "End": int(win[1].timestamp()),
        "StartTime": win[0].isoformat(),
        "EndTime": win[1].isoformat(),
        "Reason": d.reason,
        "Schedule": d.schedule or "",
        # the collector drops the ad by itself when it is over, also if csctl stops running
        "ClassAdLifetime": max(60, min(lifetime, 400 * 24 * 3600)),
    }


def ad_name(d: Downtime, config: Config) -> str:
    """The ad's Name: unique per pool and downtime."""
    return f"csctl-downtime-{d.id}@{config.pool.name}"


def publish(
    services: Services, downtimes: list[Downtime], now: datetime, withdraw: list[Downtime] | None = None
) -> list[str]:
    """Advertise every downtime with a window left; withdraw the ones over or removed.
    Returns warnings (the declarations stand even when the collector is unreachable)."""
    return publish_to(services.pool, services.config, downtimes, now, withdraw or [])


def publish_to(
    pool: Pool, config: Config, downtimes: list[Downtime], now: datetime, withdraw: list[Downtime]
) -> list[str]:
    """``publish`` on a given pool adapter (the cycle's)."""
    if not hasattr(pool, "advertise"):
        return []  # a pool adapter from before downtime ads: nothing to publish to
    ads, gone = [], [ad_name(d, config) for d in withdraw]
    for d in downtimes:
        ad = downtime_ad(d, config, now)
        if ad is None:
            gone.append(ad_name(d, config))
        else:
            ads.append(ad)
    warnings = []
    try:
        if ads:
            pool.advertise(ads)
        if gone:
            pool.invalidate(AD_TYPE, gone)
    except CsctlError as exc:
        warnings.append(f"downtime ads not published: {exc.message}")
    return warnings


@dataclass
class InEffect:
    """The declared downtimes and what they mean now, for a cycle or a boot."""

    downtimes: list[Downtime]
    effects: Effects
    warnings: list[str]


def in_effect(config: Config, now: datetime) -> InEffect:
    """Read the declared downtimes and sort them by what they mean at ``now``."""
    downtimes, warnings = read_downtimes(config.state_dir)
    return InEffect(downtimes, effects(downtimes, now, config.policy.downtime_drain_ahead_minutes), warnings)


def downtime_demand(demand: Demand, config: Config, now: datetime) -> tuple[Demand, list[str]]:
    """The demand with the clouds outages keep out removed, and lines saying which
    downtime kept which cloud out (plus the file's warnings and active warnings)."""
    found = in_effect(config, now)
    allowed, kept_out = keep_out(demand, config, found.effects)
    return allowed, found.warnings + kept_out + found.effects.warnings
