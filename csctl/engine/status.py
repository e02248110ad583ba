"""``csctl status``: the whole service at a glance, from one snapshot plus the state
directory (backoff, declared downtimes, the last cycle's record). Reads only.

The last cycle is recorded here too: ``run`` writes STATE_DIR/last_cycle.json (when, how
long, its exit code, what it did), so that status can say it without a metrics file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csctl.config import Config
from csctl.engine.accounting.report import recent_usage
from csctl.engine.downtime import read_downtimes
from csctl.engine.judging import judge_apart
from csctl.engine.services import Services
from csctl.engine.state import read_backoff, read_state_file, write_atomically
from csctl.engine.view import look
from csctl.errors import ExitCode
from csctl.model import Snapshot
from csctl.plan.downtime import Downtime, Phase, in_scope, phase
from csctl.plan.supply import snapshot_demand

if TYPE_CHECKING:
    from csctl.engine.cycle import CycleReport

SCHEMA = "csctl.status/1"
LAST_CYCLE_FILE = "last_cycle.json"
LAST_CYCLE_SCHEMA = "csctl.lastcycle/1"


def record_cycle(state_dir: Path, now: datetime, report: CycleReport | None, failure: str = "") -> list[str]:
    """Remember the cycle that started at ``now``: its report, or the one-line error that
    stopped it. A failure to write is a warning (the cycle's work is done either way)."""
    data: dict[str, Any] = {"schema": LAST_CYCLE_SCHEMA, "started": now.isoformat()}
    if report is None:
        data |= {"exit_code": int(ExitCode.ERROR), "summary": failure, "errors": [failure]}
    else:
        code = ExitCode.PARTIAL if report.partial else ExitCode.OK
        data |= {
            "seconds": round(report.seconds, 3),
            "exit_code": int(code),
            "summary": report.summary(),
            "booted": report.booted,
            "drained": report.drained,
            "terminated": report.terminated,
            "errors": report.errors[:5],
            "error_count": len(report.errors),
            "held": report.held,
            "downtime": report.downtime,
        }
    try:
        write_atomically(state_dir / LAST_CYCLE_FILE, json.dumps(data, indent=1).encode())
    except OSError as exc:
        return [f"{state_dir / LAST_CYCLE_FILE}: not saved ({exc.strerror or exc})"]
    return []


def read_last_cycle(state_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The last cycle's record, or None when no cycle ran here (or its file is odd)."""
    path = state_dir / LAST_CYCLE_FILE
    try:
        data = read_state_file(path)
        raw: Any = json.loads(data) if data is not None else None
    except (OSError, ValueError) as exc:
        return None, [f"{path}: ignored, cannot be read ({exc})"]
    if raw is not None and (not isinstance(raw, dict) or raw.get("schema") != LAST_CYCLE_SCHEMA):
        return None, [f"{path}: ignored, not a csctl cycle record"]
    return raw, []


@dataclass
class CloudStatus:
    """One cloud at a glance."""

    name: str
    enabled: bool
    configured: bool = True
    vms: dict[str, int] = field(default_factory=dict)  # status -> count
    used: dict[str, int] = field(default_factory=dict)  # vms, cores: what csctl's VMs hold
    limits: dict[str, int | None] = field(default_factory=dict)  # max_vms, max_cores (config)
    quota: dict[str, int | None] | None = None  # the cloud API's remaining room
    quota_error: str | None = None
    backoff_until: str | None = None
    backoff_failures: int = 0
    backoff_images: dict[str, str] = field(default_factory=dict)  # image -> until
    downtime_active: str | None = None
    downtime_next: str | None = None


@dataclass
class StatusReport:
    """Everything ``csctl status`` shows. ``ledger`` is None until a cycle has started the
    accounting ledger."""

    time: str
    clouds: list[CloudStatus]
    demand: dict[str, Any]
    last_cycle: dict[str, Any] | None
    service_downtime: str | None = None
    ledger: dict[str, Any] | None = None  # the ledger's utilisation over the last 24 h
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema: str = SCHEMA

    def to_json(self) -> dict[str, Any]:
        """The report as ``--json`` prints it."""
        return asdict(self)


def status(services: Services) -> StatusReport:
    """One look at the pool and the clouds, with what the state directory remembers."""
    config, now = services.config, services.now()
    view = look(config, services.pool, services.clouds, now)
    backoff, warnings = read_backoff(services.state_dir, now)
    downtimes, more = read_downtimes(services.state_dir)
    last, most = read_last_cycle(services.state_dir)
    demand = snapshot_demand(view.snapshot, config, judge_with=judge_apart)
    ledger, unread = recent_usage(services.state_dir, now)
    report = StatusReport(
        time=now.isoformat(),
        clouds=[],
        demand={
            "idle_jobs": demand.idle_jobs,
            "unservable_jobs": sum(r.jobs for r in demand.rejected),
            "vms_needed": {r.vm_type: r.vms_needed for r in demand.requirements if r.vms_needed},
        },
        last_cycle=last,
        ledger=ledger,
        errors=list(view.snapshot.errors),
        warnings=services.cloud_warnings + warnings + more + most + unread + view.warnings,
    )
    lead = config.policy.downtime_drain_ahead_minutes
    service = [d for d in downtimes if d.service and phase(d, now, lead) is Phase.ACTIVE]
    report.service_downtime = service[0].describe(now) if service else None
    names = list(config.clouds) + sorted({vm.cloud for vm in view.joins.vms} - set(config.clouds))
    for name in names:
        one = _cloud(name, config, view.snapshot)
        _count_vms(one, view.joins.vms, config)
        _backoff(one, backoff.active(now), backoff.failures)
        _downtimes(one, downtimes, now, lead)
        report.clouds.append(one)
    return report


def _cloud(name: str, config: Config, snapshot: Snapshot) -> CloudStatus:
    """Enabled, limits and the quota the snapshot's own quota call got (no second call)."""
    cfg = config.clouds.get(name)
    one = CloudStatus(name, enabled=bool(cfg and cfg.enabled), configured=cfg is not None)
    if cfg is not None:
        one.limits = {"vms": cfg.max_vms, "cores": cfg.max_cores}
    room = snapshot.quotas.get(name)
    if name in snapshot.failed_clouds:
        one.quota_error = snapshot.cloud_errors.get(name) or "cloud not listed this time"
    elif room is not None and room.error:
        one.quota_error = room.error
    elif room is not None:
        one.quota = {"instances": room.instances, "cores": room.cores, "memory_mb": room.memory_mb}
        # EC2's vCPU limits, by quota code: "vCPUs L-1216C47A" -> vCPUs left
        one.quota |= {f"vCPUs {limit.name.split()[0]}": limit.left for limit in room.vcpus}
    return one


def _count_vms(one: CloudStatus, vms: list[Any], config: Config) -> None:
    cores = count = 0
    for vm in vms:
        if vm.cloud != one.name:
            continue
        one.vms[vm.status.value] = one.vms.get(vm.status.value, 0) + 1
        count += 1
        vm_type = config.vm_types.get(vm.vm_type)
        cores += vm_type.cpus if vm_type else 0
    one.used = {"vms": count, "cores": cores}


def _backoff(one: CloudStatus, active: dict[str, datetime], failures: dict[str, int]) -> None:
    until = active.get(one.name)
    if until is not None:
        one.backoff_until = until.isoformat()
        one.backoff_failures = failures.get(one.name, 0)
    for key, when in active.items():
        cloud, _, image = key.partition("/")
        if cloud == one.name and image:
            one.backoff_images[image] = when.isoformat()


def _downtimes(one: CloudStatus, downtimes: list[Downtime], now: datetime, lead: int) -> None:
    """The active and the next downtime touching the cloud (a type or the whole service
    touches every cloud)."""
    touching = [
        d for d in downtimes if d.service or d.vm_type is not None or in_scope(d, one.name, "", d.image)
    ]
    upcoming = []
    for d in touching:
        win = d.window(now)
        if win is None:
            continue
        if phase(d, now, lead) is Phase.ACTIVE and one.downtime_active is None:
            one.downtime_active = d.describe(now)
        elif win[0] > now:
            upcoming.append((win[0], d))
    if upcoming:
        one.downtime_next = min(upcoming, key=lambda pair: pair[0])[1].describe(now)
