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

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from csctl.plan.accounting.usage import JobTotals, VMUsage, overlap

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
    totals: Iterable[JobTotals],
    ran: Collection[str],
    since: int,
    until: int,
    by: str,
    now: int,
) -> tuple[list[UsageRow], UsageRow]:
    """Rows sorted by key, and their total, over ``[since, until)``. ``totals`` are the
    jobs' parts in the period per VM and owner or group (``usage.job_totals``, keyed as
    ``by`` asks; ids the ledger holds no VM for too); ``ran`` the VMs that ever ran a job."""
    if by not in GROUPINGS:
        raise ValueError(f"cannot group by {by!r}: one of {', '.join(GROUPINGS)}")
    per_vm: dict[str, list[JobTotals]] = {}
    for part in totals:
        per_vm.setdefault(part.csctl_id, []).append(part)
    rows: dict[str, UsageRow] = {}
    for vm in vms:
        seconds = overlap(vm.booted, vm.end(now), since, until)
        if seconds > 0 or since <= vm.booted < until:
            _add_vm(rows, vm, per_vm.pop(vm.csctl_id, []), seconds, by, vm.csctl_id in ran)
    for orphans in per_vm.values():  # jobs of VMs outside the period or unknown to the ledger
        for part in orphans:
            _add_jobs(rows, UNKNOWN_VM if by in ("cloud", "type") else _key(part, by), part)
    total = UsageRow(TOTAL)
    for row in rows.values():
        total.add(row)
    return [rows[key] for key in sorted(rows)], total


def _row(rows: dict[str, UsageRow], key: str) -> UsageRow:
    row = rows.get(key)
    if row is None:
        row = rows[key] = UsageRow(key)
    return row


def _key(part: JobTotals, by: str) -> str:
    return part.key or NO_GROUP if by == "group" else part.key


def _add_jobs(rows: dict[str, UsageRow], key: str, part: JobTotals) -> None:
    row = _row(rows, key)
    row.busy_core_hours += part.busy / 3600
    row.wall_core_seconds += part.busy
    row.cpu_seconds += part.cpu
    row.jobs += part.jobs


def _add_vm(
    rows: dict[str, UsageRow], vm: VMUsage, parts: list[JobTotals], seconds: int, by: str, ran: bool
) -> None:
    if by in ("cloud", "type"):
        key = vm.cloud if by == "cloud" else vm.vm_type
        for part in parts:
            _add_jobs(rows, key, part)
        shares = {key: 1.0}
    else:
        busy: dict[str, float] = {}
        for part in parts:
            _add_jobs(rows, _key(part, by), part)
            busy[_key(part, by)] = busy.get(_key(part, by), 0.0) + part.busy
        spent = sum(busy.values())
        shares = {k: b / spent for k, b in busy.items() if b > 0} if spent > 0 else {NO_JOBS: 1.0}
    for key, fraction in shares.items():
        row = _row(rows, key)
        row.provisioned_core_hours += vm.cores * seconds * fraction / 3600
        row.vm_hours += seconds * fraction / 3600
    home = _row(rows, max(shares, key=shares.__getitem__))  # the VM is counted once, where most of it went
    home.vms += 1
    home.never_ran_a_job += 0 if ran else 1
