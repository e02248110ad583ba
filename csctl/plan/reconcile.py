"""Reconciliation: the clouds' instances joined with the pool's startd ads on the csctl id."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from csctl.config import Config
from csctl.model import Instance, StartdSlot, VMState

SCHEMA = "csctl.joincheck/1"


class Status(StrEnum):
    """Where a VM stands, from both sides."""

    BOOTING = "booting"  # the cloud runs it, the pool does not know it yet
    IDLE = "idle"  # joined, no job
    BUSY = "busy"  # joined, running at least one job
    DRAINING = "draining"  # joined, told to take no new job
    NEVER_JOINED = "never-joined"  # running past the join timeout, never seen in the pool
    # joined once (its cloud's csctl-joined tag) or a schedd runs a job on it, but its
    # startd has no ad now: after a collector restart ads return within UPDATE_INTERVAL
    UNSEEN = "unseen"
    ERROR = "error"  # the cloud says it failed
    STOPPED = "stopped"  # the cloud keeps it but it does not run (e.g. HTCondor exited)
    LOST = "lost"  # a startd whose instance no cloud lists


@dataclass
class VMView:
    """One VM as csctl sees it."""

    csctl_id: str
    cloud: str
    vm_type: str
    status: Status
    instance: Instance | None = None
    slots: list[StartdSlot] = field(default_factory=list)
    age_minutes: int | None = None
    idle_since: int | None = None  # epoch seconds the VM last became idle (joined, no job)
    running_jobs: list[str] = field(default_factory=list)  # as the schedds see them
    unseen_minutes: int | None = None  # UNSEEN: for how long, as far as csctl remembers

    @property
    def claimed(self) -> list[StartdSlot]:
        """Slots running a job."""
        return [s for s in self.slots if s.state == "Claimed"]

    @property
    def in_use(self) -> bool:
        """Whether any slot holds a claim, counting dynamic slots whose own ad the
        collector has not received yet (the partitionable slot counts them), or a schedd
        says a job runs there."""
        return any(s.in_use for s in self.slots) or bool(self.running_jobs)

    @property
    def jobs(self) -> int:
        """How many jobs the VM runs, as far as its ads and the schedds tell."""
        carved = sum(s.dynamic_slots for s in self.slots)
        return max(len(self.claimed), carved, len(self.running_jobs))


@dataclass
class JoinReport:
    """Every csctl VM of the pool, classified."""

    vms: list[VMView]
    unlisted_clouds: list[str]
    schema: str = SCHEMA

    def count(self, status: Status) -> int:
        return sum(1 for vm in self.vms if vm.status is status)

    def failed(self) -> list[VMView]:
        """VMs ``join-check --fix`` terminates: never joined in time, or broken in their
        cloud, and listed by it."""
        return [vm for vm in self.vms if vm.status in (Status.NEVER_JOINED, Status.ERROR) and vm.instance]


def _joined_status(slots: Sequence[StartdSlot], running: Sequence[str]) -> Status:
    if any(s.draining for s in slots):
        return Status.DRAINING
    if any(s.in_use for s in slots) or running:
        return Status.BUSY
    return Status.IDLE


def _instance_status(
    instance: Instance, age: timedelta | None, timeout: timedelta, running: Sequence[str]
) -> Status:
    if instance.state is VMState.ERROR:
        return Status.ERROR
    if instance.state is VMState.STOPPED:
        return Status.STOPPED
    if instance.joined_at is not None or running:
        return Status.UNSEEN  # "no ad" never means "never joined"
    if age is not None and age >= timeout:
        return Status.NEVER_JOINED
    return Status.BOOTING


def reconcile(
    instances: Iterable[Instance],
    slots: Iterable[StartdSlot],
    config: Config,
    now: datetime,
    unlisted_clouds: Collection[str] = (),
    running: Mapping[str, Sequence[str]] | None = None,
    unseen_since: Mapping[str, datetime] | None = None,
) -> JoinReport:
    """Classify every VM. A startd of a cloud that could not be listed is not called lost.
    ``running``: csctl id -> jobs the schedds run there; ``unseen_since``: csctl id -> when
    a cycle first found that joined VM without an ad (csctl's small memory of it)."""
    running = running or {}
    unseen_since = unseen_since or {}
    by_id: dict[str, list[StartdSlot]] = {}
    for slot in slots:
        by_id.setdefault(slot.csctl_id, []).append(slot)
    timeout = timedelta(minutes=config.policy.join_timeout_minutes)
    views: list[VMView] = []
    for inst in instances:
        if inst.state is VMState.DELETED:
            continue
        age = now - inst.booted_at if inst.booted_at else None
        vm_slots = by_id.pop(inst.csctl_id, [])
        jobs = list(running.get(inst.csctl_id, ()))
        status = _joined_status(vm_slots, jobs) if vm_slots else _instance_status(inst, age, timeout, jobs)
        view = VMView(
            inst.csctl_id,
            inst.cloud,
            inst.vm_type,
            status,
            inst,
            vm_slots,
            int(age.total_seconds() // 60) if age else None,
            _idle_since(vm_slots) if not jobs else None,
            jobs,
        )
        if status is Status.UNSEEN:
            since = unseen_since.get(inst.csctl_id, now)
            view.unseen_minutes = max(0, int((now - since).total_seconds() // 60))
        views.append(view)
    for csctl_id, orphan in by_id.items():
        if orphan[0].cloud in unlisted_clouds:
            continue
        views.append(VMView(csctl_id, orphan[0].cloud, orphan[0].vm_type, Status.LOST, None, orphan))
    views.sort(key=lambda v: (v.cloud, v.csctl_id))
    return JoinReport(views, sorted(unlisted_clouds))


def _idle_since(slots: Sequence[StartdSlot]) -> int | None:
    """When a joined VM with no claimed slot last had a job or changed state (None when
    busy): the later of each slot's EnteredCurrentState and NumDynamicSlotsTime."""
    if not slots or any(s.in_use for s in slots):
        return None
    times = [t for s in slots for t in (s.entered_state, s.dynamic_slots_changed) if t is not None]
    return max(times) if times else None


def unseen_memory(
    report: JoinReport, remembered: Mapping[str, datetime], now: datetime
) -> dict[str, datetime]:
    """What csctl remembers for the next cycle: since when each VM now UNSEEN has had no
    ad (kept from ``remembered``, else ``now``). A VM seen again, or gone, is forgotten."""
    unseen = [vm.csctl_id for vm in report.vms if vm.status is Status.UNSEEN]
    return {csctl_id: remembered.get(csctl_id, now) for csctl_id in unseen}
