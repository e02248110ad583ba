"""The usage report's arithmetic: core-hours provisioned and busy, VM-hours, jobs and CPU
efficiency over a period, per owner, accounting group, cloud or VM type.

A VM's time counts where it overlaps the period; a job's run likewise (its run is the
``wall`` seconds before it ended). Grouped by cloud or VM type, a VM's provisioned time
goes to its own row. Grouped by owner or accounting group, a VM's provisioned time is
shared among the owners (groups) in proportion to the busy core-seconds their jobs had
on it in the period, and a VM whose jobs had none in the period goes to the row
``(no jobs)``: so the rows still add up to what the clouds provisioned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from csctl.plan.accounting.usage import JobUsage, VMUsage, overlap, share

GROUPINGS = ("cloud", "type", "owner", "group")
NO_JOBS = "(no jobs)"
NO_GROUP = "(none)"
UNKNOWN_VM = "(unknown VM)"  # a job whose VM the ledger does not hold (a ledger started anew)
TOTAL = "total"


@dataclass
class UsageRow:
    """One row of the report; ``never_ran_a_job`` counts VMs with no job in the ledger."""

    key: str
    provisioned_core_hours: float = 0.0
    busy_core_hours: float = 0.0
    vm_hours: float = 0.0
    vms: int = 0
    jobs: int = 0
    wall_core_seconds: float = field(default=0.0, repr=False)
    cpu_seconds: float = 0.0
    never_ran_a_job: int = 0

    @property
    def utilisation(self) -> float | None:
        """Busy / provisioned core-hours; None when nothing was provisioned."""
        return self.busy_core_hours / self.provisioned_core_hours if self.provisioned_core_hours else None

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time / (wall time x cores) of the jobs; None without wall time."""
        return self.cpu_seconds / self.wall_core_seconds if self.wall_core_seconds else None

    def add(self, other: UsageRow) -> None:
        """Add another row's sums to this one."""
        self.provisioned_core_hours += other.provisioned_core_hours
        self.busy_core_hours += other.busy_core_hours
        self.vm_hours += other.vm_hours
        self.vms += other.vms
        self.jobs += other.jobs
        self.wall_core_seconds += other.wall_core_seconds
        self.cpu_seconds += other.cpu_seconds
        self.never_ran_a_job += other.never_ran_a_job


def usage(
    vms: Iterable[VMUsage],
    jobs: Mapping[str, Sequence[JobUsage]],
    since: int,
    until: int,
    by: str,
    now: int,
) -> tuple[list[UsageRow], UsageRow]:
    """Rows sorted by key, and their total, over ``[since, until)``. ``jobs`` maps a csctl
    id to its VM's finished jobs (ids the ledger holds no VM for too)."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}: one of {', '.join(GROUPINGS)}")
    rows: dict[str, UsageRow] = {}
    known = set()
    for vm in vms:
        known.add(vm.csctl_id)
        seconds = overlap(vm.booted, vm.end(now), since, until)
        if seconds <= 0 and vm.booted >= until:
            continue
        if seconds <= 0 and vm.end(now) < since:
            continue
        _add_vm(rows, vm, jobs.get(vm.csctl_id, ()), seconds, since, until, by)
    for csctl_id, orphans in jobs.items():
        if csctl_id not in known:
            for job in orphans:
                _add_job(
                    rows, UNKNOWN_VM if by in ("cloud", "type") else _owner_key(job, by), job, since, until
                )
    total = UsageRow(TOTAL)
    for row in rows.values():
        total.add(row)
    return [rows[key] for key in sorted(rows)], total


def _row(rows: dict[str, UsageRow], key: str) -> UsageRow:
    row = rows.get(key)
    if row is None:
        row = rows[key] = UsageRow(key)
    return row


def _owner_key(job: JobUsage, by: str) -> str:
    return job.owner if by == "owner" else (job.group or NO_GROUP)


def _add_job(rows: dict[str, UsageRow], key: str, job: JobUsage, since: int, until: int) -> float:
    """Add a job's part in the period to row ``key``; return its busy core-seconds there."""
    part = share(job, since, until)
    if part <= 0:
        return 0.0
    row = _row(rows, key)
    busy = job.wall * part * max(job.cores, 1)
    row.busy_core_hours += busy / 3600
    row.wall_core_seconds += busy
    row.cpu_seconds += job.cpu * part
    row.jobs += 1 if since <= job.ended < until else 0
    return busy


def _add_vm(
    rows: dict[str, UsageRow],
    vm: VMUsage,
    jobs: Sequence[JobUsage],
    seconds: int,
    since: int,
    until: int,
    by: str,
) -> None:
    if by in ("cloud", "type"):
        key = vm.cloud if by == "cloud" else vm.vm_type
        for job in jobs:
            _add_job(rows, key, job, since, until)
        shares = {key: 1.0}
    else:
        busy: dict[str, float] = {}
        for job in jobs:
            owner = _owner_key(job, by)
            busy[owner] = busy.get(owner, 0.0) + _add_job(rows, owner, job, since, until)
        spent = sum(busy.values())
        shares = {k: b / spent for k, b in busy.items() if b > 0} if spent > 0 else {NO_JOBS: 1.0}
    for key, fraction in shares.items():
        row = _row(rows, key)
        row.provisioned_core_hours += vm.cores * seconds * fraction / 3600
        row.vm_hours += seconds * fraction / 3600
    home = _row(rows, next(iter(shares)) if len(shares) == 1 else max(shares, key=shares.__getitem__))
    home.vms += 1
    home.never_ran_a_job += 0 if jobs else 1
