"""What the ledger holds, as plain data, and how time is cut: a VM's life and a job's run
as intervals of epoch seconds, split by calendar month (UTC) and clipped to a period.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from typing import NamedTuple

from csctl.config import Config
from csctl.model import Snapshot, VMState

EARLIEST = 946_684_800  # 2000-01-01 UTC: no VM of csctl's booted before
MAX_TEXT = 255  # what APEL's columns hold; longer values from the history are cut on entry


class VMUsage(NamedTuple):
    """One VM as the ledger remembers it. Times are epoch seconds; ``terminated`` is None
    while the VM runs (it is the last cycle that saw it once it is gone)."""

    csctl_id: str
    cloud: str
    instance_id: str
    vm_type: str
    image: str | None
    flavor: str | None
    cores: int
    memory: int  # MB
    disk: int  # GB
    benchmark: float | None
    booted: int
    joined: int | None
    drain_started: int | None
    terminated: int | None
    last_seen: int

    def end(self, now: int) -> int:
        """When the VM stopped counting: its termination, or ``now`` while it runs."""
        return self.terminated if self.terminated is not None else max(now, self.booted)


class JobUsage(NamedTuple):
    """One finished job of a VM: it ran ``wall`` seconds on ``cores`` cores up to ``ended``."""

    job: str
    csctl_id: str
    owner: str
    group: str | None
    cores: int
    wall: int
    cpu: float
    ended: int


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """An untrusted value as the ledger stores it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit]


def sightings(snapshot: Snapshot, config: Config, now: int) -> list[VMUsage]:
    """Every VM the cycle's snapshot lists, as the ledger records it (a sighting): its
    shape from its VM type, joined once its startd is in the pool, draining from its
    slots' LastDrainStartTime. A deleted instance is seen as gone."""
    slots: dict[str, list[int | None]] = {}
    for slot in snapshot.slots:
        seen = slots.setdefault(slot.csctl_id, [])
        seen.append(slot.drain_started if slot.draining else None)
    found = []
    for inst in snapshot.instances:
        if inst.state is VMState.DELETED:
            continue
        shape = config.vm_types.get(inst.vm_type)
        booted = int(inst.booted_at.timestamp()) if inst.booted_at else now
        joined = int(inst.joined_at.timestamp()) if inst.joined_at else None
        if joined is None and inst.csctl_id in slots:
            joined = now
        drains = [t for t in slots.get(inst.csctl_id, []) if isinstance(t, int)]
        found.append(
            VMUsage(
                csctl_id=inst.csctl_id,
                cloud=inst.cloud,
                instance_id=cut(inst.provider_id),
                vm_type=inst.vm_type,
                image=inst.image and cut(inst.image),
                flavor=shape.flavors.get(inst.cloud) if shape else None,
                cores=shape.cpus if shape else 0,
                memory=shape.memory if shape else 0,
                disk=shape.disk if shape else 0,
                benchmark=shape.benchmark if shape else None,
                booted=min(max(booted, EARLIEST), now),  # a boot tag is anyone's to edit: kept sane
                joined=joined,
                drain_started=min(drains) if drains else None,
                terminated=None,
                last_seen=now,
            )
        )
    return found


def gone(running: Iterable[VMUsage], seen: Iterable[str], listed_clouds: set[str]) -> list[str]:
    """The VMs the ledger thinks run that the cycle no longer saw, on clouds that answered:
    they ended (at their ``last_seen``). A cloud that failed to list proves nothing."""
    present = set(seen)
    return [vm.csctl_id for vm in running if vm.cloud in listed_clouds and vm.csctl_id not in present]


def month_of(epoch: int) -> str:
    """``YYYY-MM`` of an instant, UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m")


@cache
def month_start(month: str) -> int:
    """The first second of a ``YYYY-MM`` month, UTC."""
    year, number = (int(part) for part in month.split("-"))
    return calendar.timegm((year, number, 1, 0, 0, 0))


@cache
def next_month(month: str) -> str:
    """The month after ``YYYY-MM``."""
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_slices(start: int, end: int) -> Iterator[tuple[str, int, int]]:
    """``[start, end)`` cut at month boundaries: (month, slice start, slice end) in order;
    one slice when both fall in one month (also when ``end <= start``)."""
    month = month_of(start)
    while True:
        boundary = month_start(next_month(month))
        if end <= boundary:
            yield month, start, max(start, end)
            return
        yield month, start, boundary
        month, start = next_month(month), boundary


def overlap(start: int, end: int, lo: int, hi: int) -> int:
    """Seconds of ``[start, end)`` inside ``[lo, hi)``."""
    return max(0, min(end, hi) - max(start, lo))


class JobTotals(NamedTuple):
    """Jobs of one VM and one owner (or accounting group) in a period, summed: busy
    core-seconds, CPU seconds, and how many of them ended in the period."""

    csctl_id: str
    key: str
    busy: float
    cpu: float
    jobs: int


def month_bounds(first: str, last: str) -> list[tuple[str, int, int]]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``) with its first second and the
    first second of the next."""
    found = []
    month = first
    while month <= last:
        found.append((month, month_start(month), month_start(next_month(month))))
        month = next_month(month)
    return found


def cpu_by_month(jobs: Iterable[JobUsage]) -> dict[str, dict[str, float]]:
    """csctl id -> month -> CPU seconds of its jobs, each job's CPU shared among the
    months it ran in by the time it ran in each."""
    found: dict[str, dict[str, float]] = {}
    for job in jobs:
        per_month = found.setdefault(job.csctl_id, {})
        start = job.ended - max(job.wall, 0)
        for month, lo, hi in month_slices(start, job.ended):
            part = share(job, lo, hi) if job.wall > 0 else 1.0
            per_month[month] = per_month.get(month, 0.0) + job.cpu * part
    return found


def job_totals(jobs: Iterable[JobUsage], since: int, until: int, by: str) -> list[JobTotals]:
    """The jobs' parts in ``[since, until)`` summed per VM and per owner (``by`` "owner")
    or accounting group (otherwise; "" for none)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for job in jobs:
        part = share(job, since, until)
        if part <= 0:
            continue
        key = job.owner if by == "owner" else (job.group or "")
        total = sums.setdefault((job.csctl_id, key), [0.0, 0.0, 0])
        total[0] += job.wall * part * max(job.cores, 1)
        total[1] += job.cpu * part
        total[2] += 1 if since <= job.ended < until else 0
    return [JobTotals(i, k, busy, cpu, int(n)) for (i, k), (busy, cpu, n) in sums.items()]


def share(job: JobUsage, lo: int, hi: int) -> float:
    """The fraction of a job's run inside ``[lo, hi)``; a run of no length counts wholly in
    the interval holding its end."""
    if job.wall <= 0:
        return 1.0 if lo <= job.ended < hi else 0.0
    return overlap(job.ended - job.wall, job.ended, lo, hi) / job.wall
