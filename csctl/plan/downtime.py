"""Declared downtimes: their windows, and what they mean for csctl at a moment. Pure.

A downtime has a scope (a cloud, an image on a cloud, a VM type, or the whole service),
a severity (an outage keeps csctl out; a warning is only reported) and either one window
(start, end) or a cron schedule whose every match opens a window of a fixed duration.
Windows include their start and exclude their end.

Ahead of an outage of a cloud, image or type, from ``policy.downtime_drain_ahead_minutes``
before its start (or later, when the VM's MaxJobRetirementTime is shorter, so that the VM
still serves until its jobs can no longer finish), csctl boots nothing in the scope and
drains the VMs there; at the start, VMs still there are drained or terminated as the
downtime says. A service outage holds every boot and every retirement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from csctl.config import Config
from csctl.plan.cron import parse_cron
from csctl.plan.demand import Demand
from csctl.plan.reconcile import JoinReport, Status, VMView
from csctl.plan.retire import Action, Retirement, RetirePlan

SCHEMA = "csctl.downtimes/1"


class Severity(StrEnum):
    OUTAGE = "outage"
    WARNING = "warning"


class AtStart(StrEnum):
    """What happens, at the start of an outage, to a VM in its scope that is still there."""

    DRAIN = "drain"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Downtime:
    """One declared downtime. ``start``/``end`` for one window; ``schedule`` and
    ``duration_minutes`` for a recurring one. Exactly one of cloud, vm_type, service
    names the scope; ``image`` narrows a cloud's."""

    id: str
    reason: str = ""
    severity: Severity = Severity.OUTAGE
    cloud: str | None = None
    image: str | None = None
    vm_type: str | None = None
    service: bool = False
    start: datetime | None = None
    end: datetime | None = None
    schedule: str | None = None
    duration_minutes: int | None = None
    at_start: AtStart = AtStart.DRAIN
    source: str = ""  # where it came from, e.g. "gocdb:12345"

    @property
    def scope(self) -> str:
        """What it affects, in words."""
        if self.service:
            return "service"
        if self.vm_type is not None:
            return f"type {self.vm_type}"
        if self.image is not None:
            return f"image {self.image} on cloud {self.cloud}"
        return f"cloud {self.cloud}"

    def window(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The window open at ``now``, else the next one; None when none is left."""
        if self.schedule is None:
            assert self.start is not None and self.end is not None
            return (self.start, self.end) if self.end > now else None
        length = timedelta(minutes=self.duration_minutes or 0)
        cron = parse_cron(self.schedule)
        # a match within one duration before now opens a window that is still open
        opened = cron.last_at_or_before(now, now - length)
        if opened is not None and opened + length > now:
            return opened, opened + length
        following = cron.next_after(now)
        return None if following is None else (following, following + length)

    def describe(self, now: datetime) -> str:
        """``downtime 3 (cloud FGHotel, outage 10:00-12:00 UTC: reason)``."""
        win = self.window(now)
        when = f"{_short(win[0])}-{_short(win[1])}" if win else "ended"
        reason = f": {self.reason}" if self.reason else ""
        return f"downtime {self.id} ({self.scope}, {self.severity.value} {when}{reason})"


def _short(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class Phase(StrEnum):
    ACTIVE = "active"
    AHEAD = "draining ahead"  # within the drain-ahead lead of the start
    UPCOMING = "upcoming"
    ENDED = "ended"


def phase(downtime: Downtime, now: datetime, lead_minutes: int) -> Phase:
    """Where ``now`` stands against the downtime's current or next window."""
    win = downtime.window(now)
    if win is None:
        return Phase.ENDED
    if win[0] <= now:
        return Phase.ACTIVE
    if now >= win[0] - timedelta(minutes=lead_minutes):
        return Phase.AHEAD
    return Phase.UPCOMING


def in_scope(downtime: Downtime, cloud: str, vm_type: str, image: str | None) -> bool:
    """Whether a VM (or a boot) of ``vm_type`` with ``image`` on ``cloud`` is in scope."""
    if downtime.service:
        return True
    if downtime.vm_type is not None:
        return downtime.vm_type == vm_type
    if downtime.cloud != cloud:
        return False
    return downtime.image is None or downtime.image == image


@dataclass
class Effects:
    """What the downtimes mean at ``now``: the outages that keep boots out (active, or
    within their drain-ahead lead), an active service outage, and the warnings to report."""

    now: datetime
    blocking: list[Downtime] = field(default_factory=list)
    service: Downtime | None = None
    warnings: list[str] = field(default_factory=list)

    def blocker(self, cloud: str, vm_type: str, image: str | None) -> Downtime | None:
        """The outage that keeps a boot of ``vm_type`` with ``image`` on ``cloud`` out."""
        return next((d for d in self.blocking if in_scope(d, cloud, vm_type, image)), None)

    def hold(self) -> list[str]:
        """Why nothing may be terminated or drained: an active service outage."""
        if self.service is None:
            return []
        return [f"{self.service.describe(self.now)}: csctl boots and retires nothing"]


def effects(downtimes: Iterable[Downtime], now: datetime, lead_minutes: int) -> Effects:
    """Sort the downtimes by what they mean at ``now``."""
    result = Effects(now)
    for d in downtimes:
        where = phase(d, now, lead_minutes)
        if where in (Phase.UPCOMING, Phase.ENDED):
            continue
        if d.severity is Severity.WARNING:
            if where is Phase.ACTIVE:
                result.warnings.append(f"{d.describe(now)}: booting as usual")
        elif d.service:
            if where is Phase.ACTIVE and result.service is None:
                result.service = d
        else:
            result.blocking.append(d)
    return result


def keep_out(demand: Demand, config: Config, found: Effects) -> tuple[Demand, list[str]]:
    """The demand with every cloud an outage keeps out removed from each requirement's
    clouds, and one line per cloud kept out saying which downtime did it. The boot plan
    then goes to the other allowed clouds; a service outage removes them all."""
    lines: dict[str, str] = {}
    requirements = []
    for req in demand.requirements:
        allowed = []
        for cloud in req.clouds:
            vm_type = config.vm_types.get(req.vm_type)
            image = req.images.get(cloud) or (vm_type.images.get(cloud) if vm_type else None)
            why = found.service or found.blocker(cloud, req.vm_type, image)
            if why is None:
                allowed.append(cloud)
            elif req.vms_needed:
                key = f"{cloud}/{req.vm_type}"
                lines[key] = f"{req.vm_type} on {cloud} kept out by {why.describe(found.now)}"
        requirements.append(replace(req, clouds=allowed))
    return replace(demand, requirements=requirements), list(lines.values())


def drain_at(downtime: Downtime, vm: VMView, now: datetime, lead_minutes: int) -> datetime | None:
    """When a VM in the scope of an outage must start draining: the drain-ahead lead before
    the window, or later when the VM's MaxJobRetirementTime is shorter (its jobs could not
    use the extra time). None when no window is left."""
    win = downtime.window(now)
    if win is None:
        return None
    lead = timedelta(minutes=lead_minutes)
    retirement = [s.max_job_retirement_seconds for s in vm.slots if s.max_job_retirement_seconds is not None]
    if retirement:
        lead = min(lead, timedelta(seconds=max(retirement)))
    return win[0] - lead


def retire_for_downtimes(
    plan: RetirePlan,
    report: JoinReport,
    downtimes: Sequence[Downtime],
    config: Config,
    now: datetime,
) -> RetirePlan:
    """Add to ``plan`` the VMs outages empty: drain every joined VM in scope from its
    drain time on; at the start, terminate the ones still there if the downtime says so.
    A held plan (safety valve, service outage) stays as it is."""
    if plan.held:
        return plan
    lead = config.policy.downtime_drain_ahead_minutes
    acting = {r.csctl_id for r in plan.retirements}
    outages = [d for d in downtimes if d.severity is Severity.OUTAGE and not d.service]
    for vm in report.vms:
        if vm.csctl_id in acting or vm.status not in (Status.IDLE, Status.BUSY, Status.DRAINING):
            continue
        if any(s.image_test for s in vm.slots):
            continue
        image = vm.instance.image if vm.instance else None
        for d in outages:
            retirement = _for_downtime(d, vm, image, now, lead)
            if retirement is not None:
                plan.retirements.append(retirement)
                plan.kept.pop(vm.csctl_id, None)
                break
    return plan


def _for_downtime(d: Downtime, vm: VMView, image: str | None, now: datetime, lead: int) -> Retirement | None:
    if not in_scope(d, vm.cloud, vm.vm_type, image):
        return None
    due = drain_at(d, vm, now, lead)
    win = d.window(now)
    if due is None or win is None or now < due:
        return None
    started = now >= win[0]
    if started and d.at_start is AtStart.TERMINATE:
        jobs = tuple(s.job_id or "?" for s in vm.claimed) if vm.in_use else ()
        reason = f"{d.describe(now)} started: terminated"
        return Retirement(vm.csctl_id, vm.cloud, vm.vm_type, Action.TERMINATE, reason, jobs)
    if vm.status is Status.DRAINING:
        return None  # already draining; plan_retire terminates it once it is empty
    when = "started" if started else f"starts at {_short(win[0])}"
    return Retirement(vm.csctl_id, vm.cloud, vm.vm_type, Action.DRAIN, f"{d.describe(now)} {when}: draining")


OVERLAP_HORIZON = timedelta(days=62)  # recurring windows are compared this far ahead
MAX_WINDOWS = 2000  # ... or for this many windows of each, whichever comes first


def windows(
    downtime: Downtime, now: datetime, horizon: timedelta = OVERLAP_HORIZON
) -> list[tuple[datetime, datetime]]:
    """The downtime's windows from the one open at ``now`` up to ``now + horizon``."""
    found: list[tuple[datetime, datetime]] = []
    win = downtime.window(now)
    while win is not None and win[0] <= now + horizon and len(found) < MAX_WINDOWS:
        found.append(win)
        if downtime.schedule is None:
            break
        win = downtime.window(win[1])
    return found


def _overlap(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]) -> bool:
    i = j = 0
    while i < len(a) and j < len(b):  # both lists are sorted and each one's windows are disjoint
        if a[i][0] < b[j][1] and b[j][0] < a[i][1]:
            return True
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return False


def overlap_problem(new: Downtime, existing: Iterable[Downtime], now: datetime) -> str | None:
    """Why ``new`` contradicts a declared downtime: the same scope, overlapping windows
    (recurring ones compared over the next two months), but a different severity or a
    different fate for the VMs at the start; None if it does not."""
    mine = windows(new, now)
    for old in existing:
        if old.scope != new.scope or (old.severity, old.at_start) == (new.severity, new.at_start):
            continue
        if _overlap(mine, windows(old, now)):
            return (
                f"overlaps {old.describe(now)} with a different severity or at-start action; "
                f"remove it first (csctl downtime remove {old.id})"
            )
    return None
