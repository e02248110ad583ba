"""Declaring a downtime: the operator's words (times, durations, a scope) checked and
turned into a ``Downtime``, and downtimes to and from their JSON form. Pure: every
problem is an InputError of one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from csctl.config import Config
from csctl.errors import InputError
from csctl.plan.cron import CronError, parse_cron
from csctl.plan.downtime import AtStart, Downtime, Severity, overlap_problem

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
MAX_MINUTES = 366 * 24 * 60


@dataclass(frozen=True)
class Request:
    """``csctl downtime add``'s options, as given."""

    cloud: str | None = None
    image: str | None = None
    vm_type: str | None = None
    service: bool = False
    start: str | None = None
    end: str | None = None
    duration: str | None = None
    schedule: str | None = None
    reason: str = ""
    severity: str = "outage"
    at_start: str = "drain"


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time, UTC when it names no zone (``2026-12-01T08:00``, ``...Z``)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{option} {text!r}: not an ISO 8601 time (e.g. 2026-12-01T08:00Z)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_duration(text: str) -> int:
    """Minutes in ``8h``, ``90m``, ``1d12h``, ``2h30m``."""
    found = _DURATION.match(text.strip().lower())
    if not text.strip() or found is None:
        raise InputError(f"--duration {text!r}: expected e.g. 90m, 8h, 1d12h")
    days, hours, minutes = (int(g or 0) for g in found.groups())
    total = days * 1440 + hours * 60 + minutes
    if not 0 < total <= MAX_MINUTES:
        raise InputError(f"--duration {text!r}: must be more than 0 and at most 366 days")
    return total


def _scope(request: Request, config: Config) -> None:
    given = [request.cloud is not None, request.vm_type is not None, request.service]
    if sum(given) != 1:
        raise InputError("give one scope: --cloud NAME [--image IMG], --type T, or --service")
    if request.image is not None and request.cloud is None:
        raise InputError("--image needs --cloud")
    if request.cloud is not None and request.cloud not in config.clouds:
        raise InputError(
            f"unknown cloud {request.cloud!r} (known: {', '.join(sorted(config.clouds)) or 'none'})"
        )
    if request.vm_type is not None and request.vm_type not in config.vm_types:
        known = ", ".join(sorted(config.vm_types)) or "none"
        raise InputError(f"unknown VM type {request.vm_type!r} (known: {known})")
    if request.image is not None:
        images = {t.images.get(request.cloud or "") for t in config.vm_types.values()} - {None}
        if request.image not in images:
            known = ", ".join(sorted(str(i) for i in images)) or "none"
            raise InputError(f"unknown image {request.image!r} on cloud {request.cloud} (known: {known})")


def build(
    request: Request, config: Config, existing: Sequence[Downtime], new_id: str, now: datetime
) -> Downtime:
    """The downtime ``request`` declares, checked against the configuration and the
    downtimes already declared."""
    _scope(request, config)
    try:
        severity, at_start = Severity(request.severity), AtStart(request.at_start)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    minutes = parse_duration(request.duration) if request.duration is not None else None
    downtime = Downtime(
        id=new_id,
        reason=request.reason,
        severity=severity,
        cloud=request.cloud,
        image=request.image,
        vm_type=request.vm_type,
        service=request.service,
        at_start=at_start,
    )
    if request.schedule is not None:
        if request.start is not None or request.end is not None or minutes is None:
            raise InputError("--schedule takes --duration, not --start or --end")
        try:
            parse_cron(request.schedule)
        except CronError as exc:
            raise InputError(str(exc)) from None
        downtime = replace(downtime, schedule=request.schedule, duration_minutes=minutes)
    else:
        start, end = _one_window(request, minutes, now)
        downtime = replace(downtime, start=start, end=end)
    if downtime.window(now) is None:
        raise InputError("the downtime is already over, or its schedule never matches")
    problem = overlap_problem(downtime, existing, now)
    if problem:
        raise InputError(problem)
    return downtime


def _one_window(request: Request, minutes: int | None, now: datetime) -> tuple[datetime, datetime]:
    start = parse_time(request.start, "--start") if request.start is not None else now
    if (request.end is None) == (minutes is None):
        raise InputError("give --end or --duration (one of them)")
    end = (
        parse_time(request.end, "--end")
        if request.end is not None
        else start + timedelta(minutes=minutes or 0)
    )
    if end <= start:
        raise InputError(f"--end {end:%Y-%m-%dT%H:%M:%SZ} is not after --start {start:%Y-%m-%dT%H:%M:%SZ}")
    return start, end


def to_json(d: Downtime) -> dict[str, Any]:
    """The downtime as its state file keeps it."""
    data: dict[str, Any] = {"id": d.id, "scope": d.scope, "severity": d.severity.value, "reason": d.reason}
    for key in ("cloud", "image", "vm_type", "schedule", "duration_minutes", "source"):
        if getattr(d, key):
            data[key] = getattr(d, key)
    if d.service:
        data["service"] = True
    if d.start is not None and d.end is not None:
        data["start"], data["end"] = d.start.isoformat(), d.end.isoformat()
    data["at_start"] = d.at_start.value
    return data


def from_json(raw: Any) -> Downtime:
    """A downtime from its state-file form; ValueError when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise ValueError("not a downtime")

    def opt(key: str) -> Any:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} is not text")
        return value

    start, end = opt("start"), opt("end")
    d = Downtime(
        id=raw["id"],
        reason=str(raw.get("reason", "")),
        severity=Severity(raw.get("severity", "outage")),
        cloud=opt("cloud"),
        image=opt("image"),
        vm_type=opt("vm_type"),
        service=raw.get("service") is True,
        start=parse_time(start, "start") if start else None,
        end=parse_time(end, "end") if end else None,
        schedule=opt("schedule"),
        duration_minutes=int(raw["duration_minutes"]) if raw.get("duration_minutes") else None,
        at_start=AtStart(raw.get("at_start", "drain")),
        source=str(raw.get("source", "")),
    )
    if d.schedule is not None:
        parse_cron(d.schedule)
        if not d.duration_minutes:
            raise ValueError("a schedule without a duration")
    elif d.start is None or d.end is None:
        raise ValueError("neither a window nor a schedule")
    return d
