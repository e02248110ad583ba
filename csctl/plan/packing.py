"""Packing jobs onto VMs: the room a VM has left, the slot a job takes, and
first-fit-decreasing of many job shapes onto VMs already there and new ones.

Demand counts new VMs with it; the simulator packs its VMs with the same rules, so the
two never disagree about what fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from csctl.model import SupplyVM
from csctl.plan.jobs import JobNeeds

OPEN_WINDOW = 8  # partly filled new VMs first-fit searches (older ones are nearly full)


@dataclass
class Room:
    """The room left on one VM (booting, joined, or planned) as demand packs jobs onto it;
    the simulator packs its VMs with the same rules."""

    cpus: int
    memory: int
    disk_kb: int
    supply: SupplyVM | None = None
    used: bool = False
    one_job: bool = False  # a VM of one static slot: the first job takes all of it

    def fits(self, cpus: int, memory: int, disk_kb: int) -> int:
        """How many slots of this size fit in the room left."""
        counts = [self.cpus // cpus]
        if memory:
            counts.append(self.memory // memory)
        if disk_kb:
            counts.append(self.disk_kb // disk_kb)
        if self.one_job:
            counts.append(1)
        return max(0, min(counts))

    def take(self, n: int, cpus: int, memory: int, disk_kb: int) -> None:
        self.cpus -= n * cpus
        self.memory -= n * memory
        self.disk_kb -= n * disk_kb
        self.used = True
        if self.one_job:
            self.cpus = self.memory = self.disk_kb = 0


def job_slot(needs: JobNeeds, vm: tuple[int, int, int]) -> tuple[int, int, int]:
    """The room one job takes on a VM of size ``vm`` (cpus, MB, KB)."""
    if needs.whole_vm:
        return vm
    return needs.cpus, needs.memory, needs.disk_kb


def pack(
    shapes: Sequence[tuple[tuple[int, int, int], int]],
    vm: tuple[int, int, int],
    existing: list[Room],
) -> tuple[int, int]:
    """First-fit-decreasing of ``(slot, count)`` shapes onto existing bins, then new VMs.

    Returns (jobs placed on existing bins, new VMs opened). Whole new VMs are
    filled arithmetically, so the cost is per shape and bin, never per job; and only the
    last ``OPEN_WINDOW`` partly filled new VMs are searched, so 100,000 distinct shapes
    cost linear time, not quadratic.
    """
    merged: dict[tuple[int, int, int], int] = {}
    for slot, count in shapes:
        merged[slot] = merged.get(slot, 0) + count
    on_existing = 0
    existing = [b for b in existing if b.cpus > 0]
    opened: list[Room] = []
    new_vms = 0
    for (cpus, memory, disk_kb), count in sorted(merged.items(), reverse=True):
        left = count
        for bins in (existing, opened[-OPEN_WINDOW:]):
            for bin_ in bins:
                if bin_.cpus < cpus or (memory and bin_.memory < memory):
                    continue  # not one more slot: the usual case for nearly full VMs, without min()
                if disk_kb and bin_.disk_kb < disk_kb:
                    continue
                # Room.fits, written out: this loop runs up to OPEN_WINDOW times per shape
                n = min(left, bin_.cpus // cpus)
                if memory:
                    n = min(n, bin_.memory // memory)
                if disk_kb:
                    n = min(n, bin_.disk_kb // disk_kb)
                if bin_.one_job:
                    n = min(n, 1)
                if n > 0:
                    bin_.take(n, cpus, memory, disk_kb)
                    left -= n
                    on_existing += n if bin_.supply is not None else 0
                    if left == 0:
                        break
            if left == 0:
                break
        if left == 0:
            continue
        per_vm = Room(*vm).fits(cpus, memory, disk_kb)
        full, rest = divmod(left, per_vm)
        new_vms += full + (1 if rest else 0)
        if rest:
            partial = Room(*vm)
            partial.take(rest, cpus, memory, disk_kb)
            opened.append(partial)
    return on_existing, new_vms
