"""The simulated world: clouds that boot VMs after a drawn delay (or refuse, at a given
rate), and a pool whose negotiator matches idle jobs onto the VMs' free room.

A VM of type T offers T's cpus, memory and disk as one partitionable slot; a job takes
the slot demand packs it into (``csctl.plan.demand``'s own packing rules), and only on a
VM of the type and clouds demand chose for it, so the world never serves a job in a way
the planners did not count on. Jobs run for their run time, then leave.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from csctl.config import Config
from csctl.engine.simulate.traces import Fields, TraceJob
from csctl.model import Instance, JobGroup, JobProblem, StartdSlot, VMState
from csctl.plan.demand import compute_demand
from csctl.plan.jobs import NEEDS_ATTRS, JobNeeds, read_needs
from csctl.plan.matching import KB_PER_GB, evaluated_attributes
from csctl.plan.packing import Room, job_slot  # demand's packing: what fits in a VM's room
from csctl.plan.placement import BootItem
from csctl.plan.queue import SAMPLE_IDS, groups_from_json

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_JOIN, _FINISH = 0, 1  # at the same second a VM joins before a job ends: both free room


def when(t: int) -> datetime:
    """The simulated clock's time ``t`` (seconds) as a datetime."""
    return EPOCH + timedelta(seconds=t)


@dataclass
class Shape:
    """Jobs with identical ads: one group for the planners, classified once."""

    index: int
    group: JobGroup  # the ad, built as `csctl demand --from-file` builds it
    owner: str
    vm_type: str | None = None  # None: no VM type can serve these jobs
    clouds: frozenset[str] = frozenset()
    slot: tuple[int, int, int] = (0, 0, 0)  # cpus, MB, KB one job takes
    reasons: tuple[str, ...] = ()


@dataclass
class SimVM:
    """One simulated VM, from its boot call to its termination."""

    csctl_id: str
    cloud: str
    vm_type: str
    image: str
    booted: int
    room: Room
    keep_alive: int | None
    joined: int | None = None
    changed: int | None = None  # when a job last started or ended on it
    running: int = 0
    jobs_run: int = 0
    drain_started: int | None = None


@dataclass
class Stats:
    """What happened, for the report."""

    jobs: int = 0
    unservable: dict[tuple[str, ...], int] = field(default_factory=dict)  # reasons -> jobs
    waits: list[int] = field(default_factory=list)
    busy_core_seconds: dict[str, float] = field(default_factory=dict)  # owner -> core-seconds
    vm_seconds: float = 0.0
    core_seconds: float = 0.0
    boots: int = 0
    boots_by_type: dict[str, int] = field(default_factory=dict)
    boots_unused: int = 0
    boot_failures: int = 0
    peak_vms: dict[str, int] = field(default_factory=dict)


def _needs(group: JobGroup) -> JobNeeds:
    """What a served group's jobs ask, read as demand reads it."""
    values = evaluated_attributes(group.ad, NEEDS_ATTRS)
    needs = values if isinstance(values, JobProblem) else read_needs(values)
    assert isinstance(needs, JobNeeds), "demand served the group, so its needs read"
    return needs


class World:
    """Simulated clouds and pool under a simulated clock (seconds)."""

    def __init__(
        self,
        config: Config,
        jobs: list[TraceJob],
        rng: random.Random,
        boot_time: tuple[float, float],
        failure_rate: float,
    ) -> None:
        self.config, self.rng = config, rng
        self.boot_mean, self.boot_sd = boot_time
        self.failure_rate = failure_rate
        self.stats = Stats(jobs=len(jobs))
        self.vms: dict[str, SimVM] = {}
        self.shapes: dict[Fields, Shape] = {}
        self.queue: dict[int, deque[tuple[int, int, int]]] = {}  # shape -> (job, submit, run)
        self._by_index: list[Shape] = []
        self._arrivals, self._next = jobs, 0
        self._events: list[tuple[int, int, int, str, int, int]] = []
        self._seq = self._batches = 0
        self._live: dict[str, int] = {}
        self._new_room: list[SimVM] = []
        self._new_jobs: set[int] = set()
        # kept as things happen, so a cycle's sample for the plot costs nothing
        self.idle = self.running = self.cores = 0

    # -- time ------------------------------------------------------------------------------

    @property
    def arrivals_left(self) -> bool:
        return self._next < len(self._arrivals)

    @property
    def busy(self) -> bool:
        """Whether any job is idle or running."""
        return any(self.queue.values()) or any(vm.running for vm in self.vms.values())

    def advance(self, until: int) -> None:
        """Every arrival, join and job end up to ``until``, each instant matched in turn."""
        while True:
            t = self._next_time()
            if t is None or t > until:
                return
            while self.arrivals_left and self._arrivals[self._next].submit == t:
                self._arrive(self._next, self._arrivals[self._next])
                self._next += 1
            while self._events and self._events[0][0] == t:
                _, kind, _, vm_id, cpus_mem, disk = heapq.heappop(self._events)
                self._event(kind, vm_id, cpus_mem, disk, t)
            self._negotiate(t)

    def _next_time(self) -> int | None:
        times = [self._arrivals[self._next].submit] if self.arrivals_left else []
        if self._events:
            times.append(self._events[0][0])
        return min(times) if times else None

    def _push(self, t: int, kind: int, vm_id: str, a: int = 0, b: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, kind, self._seq, vm_id, a, b))

    # -- jobs ------------------------------------------------------------------------------

    def _shape(self, fields: Fields) -> Shape:
        shape = self.shapes.get(fields)
        if shape is not None:
            return shape
        group = groups_from_json([dict(fields)], "trace")[0]
        owner = dict(fields).get("Owner")
        shape = Shape(len(self._by_index), group, owner if isinstance(owner, str) else "?")
        # demand's own verdict on one job of the shape: its VM type and clouds, or why none
        demand = compute_demand([group], [], self.config)
        if demand.rejected:
            shape.reasons = tuple(demand.rejected[0].reasons)
        else:
            need = demand.requirements[0]
            vm_type = self.config.vm_types[need.vm_type]
            size = (vm_type.cpus, vm_type.memory, vm_type.disk * KB_PER_GB)
            shape.vm_type, shape.clouds = need.vm_type, frozenset(need.clouds)
            shape.slot = job_slot(_needs(group), size)
        self.shapes[fields] = shape
        self._by_index.append(shape)
        return shape

    def _arrive(self, number: int, job: TraceJob) -> None:
        shape = self._shape(job.fields)
        if shape.vm_type is None:
            # it would sit in the queue for ever; demand rejects it every cycle with these reasons
            self.stats.unservable[shape.reasons] = self.stats.unservable.get(shape.reasons, 0) + 1
            return
        self.queue.setdefault(shape.index, deque()).append((number, job.submit, job.run))
        self._new_jobs.add(shape.index)
        self.idle += 1

    def groups(self) -> list[JobGroup]:
        """The idle jobs as the planners see them: one group per shape, its ad shared."""
        out = []
        for index, jobs in self.queue.items():
            if jobs:
                ids = [f"{jobs[i][0] + 1}.0" for i in range(min(SAMPLE_IDS, len(jobs)))]
                out.append(JobGroup(self._by_index[index].group.ad, len(jobs), ids, "trace"))
        return out

    # -- the negotiator --------------------------------------------------------------------

    def _negotiate(self, t: int) -> None:
        """Match at ``t``: idle jobs onto room that opened, then new jobs onto any room.
        Oldest jobs first; only the shapes and VMs that changed are looked at."""
        waiting = sorted((q[0][1], i) for i, q in self.queue.items() if q)
        for vm in sorted(self._new_room, key=lambda v: v.csctl_id):
            for _, index in waiting:
                self._place(self._by_index[index], vm, t)
        for _, index in waiting:
            if index in self._new_jobs:
                shape = self._by_index[index]
                for vm in self.vms.values():
                    if not self.queue[index]:
                        break
                    self._place(shape, vm, t)
        self._new_room.clear()
        self._new_jobs.clear()

    def _place(self, shape: Shape, vm: SimVM, t: int) -> None:
        jobs = self.queue[shape.index]
        if (
            not jobs
            or vm.joined is None
            or vm.drain_started is not None
            or vm.vm_type != shape.vm_type
            or vm.cloud not in shape.clouds
        ):
            return
        n = min(len(jobs), vm.room.fits(*shape.slot))
        if n <= 0:
            return
        vm.room.take(n, *shape.slot)
        cpus, memory, disk = shape.slot
        for _ in range(n):
            _, submit, run = jobs.popleft()
            self.stats.waits.append(t - submit)
            busy = self.stats.busy_core_seconds
            busy[shape.owner] = busy.get(shape.owner, 0.0) + cpus * run
            self._push(t + run, _FINISH, vm.csctl_id, cpus * (1 << 32) + memory, disk)
        vm.running += n
        vm.jobs_run += n
        vm.changed = t
        self.idle -= n
        self.running += n

    def _event(self, kind: int, vm_id: str, cpus_mem: int, disk: int, t: int) -> None:
        vm = self.vms.get(vm_id)
        if vm is None:
            return
        if kind == _JOIN:
            vm.joined = vm.changed = t
        else:
            vm.room.cpus += cpus_mem >> 32
            vm.room.memory += cpus_mem & 0xFFFFFFFF
            vm.room.disk_kb += disk
            vm.running -= 1
            self.running -= 1
            vm.changed = t
        self._new_room.append(vm)

    # -- what the planners see -------------------------------------------------------------

    def instances(self) -> list[Instance]:
        """Every live VM as its cloud lists it."""
        return [
            Instance(
                vm.csctl_id,
                vm.cloud,
                vm.vm_type,
                VMState.RUNNING if vm.joined is not None else VMState.BOOTING,
                vm.csctl_id,
                booted_at=when(vm.booted),
                image=vm.image,
                joined_at=when(vm.joined) if vm.joined is not None else None,
            )
            for vm in self.vms.values()
        ]

    def slots(self) -> list[StartdSlot]:
        """Each joined VM's partitionable slot ad: its free room and how many jobs it runs.
        (Nothing is lost here as in a collector restart, so the schedds' list of running
        jobs adds nothing and is left empty.)"""
        return [
            StartdSlot(
                f"slot1@{vm.csctl_id}",
                vm.csctl_id,
                vm.csctl_id,
                vm.vm_type,
                vm.cloud,
                "Partitionable",
                "Unclaimed",
                "Idle",
                vm.room.cpus,
                vm.room.memory,
                vm.room.disk_kb,
                draining=vm.drain_started is not None,
                entered_state=vm.joined,
                dynamic_slots_changed=vm.changed,
                drain_started=vm.drain_started,
                dynamic_slots=vm.running,
                keep_alive_minutes=vm.keep_alive,
            )
            for vm in self.vms.values()
            if vm.joined is not None
        ]

    # -- the clouds ------------------------------------------------------------------------

    def boot(self, item: BootItem, t: int) -> bool:
        """One boot call: False when the cloud refuses it (the failure rate), else
        ``item.count`` VMs that join the pool after each one's drawn boot delay."""
        if self.failure_rate and self.rng.random() < self.failure_rate:
            self.stats.boot_failures += 1
            return False
        vm_type = self.config.vm_types[item.vm_type]
        self._batches += 1
        batch = f"{item.cloud.lower()}-{self._batches:08x}"
        for index in range(item.count):
            size = (vm_type.cpus, vm_type.memory, vm_type.disk * KB_PER_GB)
            vm = SimVM(
                f"{batch}-{index}",
                item.cloud,
                item.vm_type,
                item.image,
                t,
                Room(*size),
                item.keep_alive_minutes,
            )
            self.vms[vm.csctl_id] = vm
            delay = (
                max(0, round(self.rng.gauss(self.boot_mean, self.boot_sd)))
                if self.boot_sd
                else self.boot_mean
            )
            self._push(t + int(delay), _JOIN, vm.csctl_id)
        self.stats.boots += item.count
        by_type = self.stats.boots_by_type
        by_type[item.vm_type] = by_type.get(item.vm_type, 0) + item.count
        self.cores += item.count * vm_type.cpus
        live = self._live[item.cloud] = self._live.get(item.cloud, 0) + item.count
        self.stats.peak_vms[item.cloud] = max(self.stats.peak_vms.get(item.cloud, 0), live)
        return True

    def drain(self, vm_id: str, t: int) -> None:
        """The VM takes no new job; its running jobs finish."""
        vm = self.vms.get(vm_id)
        if vm is not None and vm.drain_started is None:
            vm.drain_started = t

    def terminate(self, vm_id: str, t: int) -> None:
        """The VM is gone: its time is counted (jobs on it, if any, are lost with it)."""
        vm = self.vms.pop(vm_id, None)
        if vm is None:
            return
        seconds = t - vm.booted
        self.stats.vm_seconds += seconds
        self.stats.core_seconds += seconds * self.config.vm_types[vm.vm_type].cpus
        self.stats.boots_unused += vm.jobs_run == 0
        self._live[vm.cloud] -= 1
        self.cores -= self.config.vm_types[vm.vm_type].cpus
        self.running -= vm.running
