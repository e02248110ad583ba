"""Where to boot: a pure function from demand, the clouds' instances and limits to a BootPlan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from csctl.config import CloudConfig, Config
from csctl.model import Instance, VMState
from csctl.plan.demand import Demand, VMRequirement

SCHEMA = "csctl.bootplan/1"


@dataclass(frozen=True)
class BootItem:
    """Boot ``count`` VMs of ``vm_type`` on ``cloud`` in one request."""

    cloud: str
    vm_type: str
    count: int
    image: str
    flavor: str | None
    max_price: float | None = None
    keep_alive_minutes: int | None = None  # the jobs' VMKeepAlive, the largest asked


@dataclass(frozen=True)
class Unplaced:
    """VMs a requirement needs that this cycle cannot boot, and why."""

    vm_type: str
    count: int
    reason: str


@dataclass
class BootPlan:
    """What ``boot`` will ask of each cloud; ``--dry-run`` prints exactly this."""

    items: list[BootItem]
    unplaced: list[Unplaced]
    schema: str = SCHEMA

    @property
    def total(self) -> int:
        return sum(item.count for item in self.items)


_ItemKey = tuple[str, str, str, str | None, float | None]  # cloud, type, image, flavor, price


@dataclass
class _Pending:
    """One boot request taking shape: requirements that share a cloud, type and image."""

    count: int = 0
    keep_alive: int | None = None


@dataclass
class _Room:
    """What is left of one cloud's limits (None: unlimited)."""

    vms: int | None
    cores: int | None
    memory: int | None
    storage: int | None

    def fits(self, cpus: int, memory: int, disk: int) -> int:
        counts = [
            left // need
            for left, need in ((self.vms, 1), (self.cores, cpus), (self.memory, memory), (self.storage, disk))
            if left is not None
        ]
        return max(0, min(counts)) if counts else 1 << 30

    def take(self, n: int, cpus: int, memory: int, disk: int) -> None:
        if self.vms is not None:
            self.vms -= n
        if self.cores is not None:
            self.cores -= n * cpus
        if self.memory is not None:
            self.memory -= n * memory
        if self.storage is not None:
            self.storage -= n * disk


def _used(config: Config, instances: Iterable[Instance]) -> dict[str, tuple[int, int, int, int]]:
    """VMs, cores, MB and GB each cloud's live csctl instances hold."""
    used: dict[str, list[int]] = {}
    for inst in instances:
        if inst.state is VMState.DELETED:
            continue
        vm_type = config.vm_types.get(inst.vm_type)
        totals = used.setdefault(inst.cloud, [0, 0, 0, 0])
        totals[0] += 1
        if vm_type is not None:
            totals[1] += vm_type.cpus
            totals[2] += vm_type.memory
            totals[3] += vm_type.disk
    return {cloud: (t[0], t[1], t[2], t[3]) for cloud, t in used.items()}


def _room(cloud: CloudConfig, used: tuple[int, int, int, int]) -> _Room:
    def left(limit: int | None, taken: int) -> int | None:
        return None if limit is None else max(0, limit - taken)

    return _Room(
        left(cloud.max_vms, used[0]),
        left(cloud.max_cores, used[1]),
        left(cloud.max_memory, used[2]),
        left(cloud.max_storage, used[3]),
    )


def plan_boot(
    demand: Demand,
    instances: Sequence[Instance],
    config: Config,
    backed_off: Mapping[str, datetime] | None = None,
    now: datetime | None = None,
    unlisted: Iterable[str] = (),
) -> BootPlan:
    """Place the VMs ``demand`` needs on clouds, within limits, highest priority cloud first.

    ``backed_off`` maps a cloud name, or ``"cloud/image"``, to the time until which
    it must not be asked (failure backoff); ``now`` is compared against it.
    Never plans more than a cloud's limits (counting its live instances) or more than
    ``policy.max_new_vms_per_cycle`` in all. Clouds in ``unlisted`` could not be listed
    this cycle: their usage is unknown, so nothing is booted there.
    """
    backed_off = dict(backed_off or {})
    used = _used(config, instances)
    rooms = {name: _room(c, used.get(name, (0, 0, 0, 0))) for name, c in config.clouds.items()}
    for name in unlisted:
        rooms[name] = _Room(0, None, None, None)
    budget = config.policy.max_new_vms_per_cycle
    items: dict[_ItemKey, _Pending] = {}
    unplaced: list[Unplaced] = []
    for req in demand.requirements:
        want = req.vms_needed
        if want == 0:
            continue
        capped = min(want, budget)
        placed, why = _place(req, capped, rooms, config, backed_off, now, items)
        budget -= placed
        if placed < capped:
            unplaced.append(Unplaced(req.vm_type, want - placed, why or "no cloud can take it"))
        elif placed < want:
            reason = f"policy.max_new_vms_per_cycle ({config.policy.max_new_vms_per_cycle}) reached"
            unplaced.append(Unplaced(req.vm_type, want - placed, reason))
    plan_items = [
        BootItem(cloud, vm_type, p.count, image, flavor, price, p.keep_alive)
        for (cloud, vm_type, image, flavor, price), p in items.items()
    ]
    return BootPlan(plan_items, unplaced)


def _clouds_by_priority(req: VMRequirement, config: Config) -> list[str]:
    order = {name: i for i, name in enumerate(config.clouds)}
    clouds = [c for c in req.clouds if c in config.clouds and config.clouds[c].enabled]
    return sorted(clouds, key=lambda c: (-config.clouds[c].priority, order[c]))


def _place(
    req: VMRequirement,
    want: int,
    rooms: dict[str, _Room],
    config: Config,
    backed_off: Mapping[str, datetime],
    now: datetime | None,
    items: dict[_ItemKey, _Pending],
) -> tuple[int, str | None]:
    """Place up to ``want`` VMs of ``req``; return how many, and why not more."""
    vm_type = config.vm_types[req.vm_type]
    size = (vm_type.cpus, vm_type.memory, vm_type.disk)
    placed, blocked = 0, []
    for cloud in _clouds_by_priority(req, config):
        image = req.images.get(cloud) or vm_type.images.get(cloud)
        if image is None:
            continue
        until = _backoff_until(backed_off, cloud, image, now)
        if until is not None:
            blocked.append(f"{cloud} backed off until {until:%H:%M:%S}")
            continue
        n = min(want - placed, rooms[cloud].fits(*size))
        if n <= 0:
            blocked.append(f"{cloud} is at its limits")
            continue
        rooms[cloud].take(n, *size)
        flavor = req.instance_types.get(cloud) or vm_type.flavors.get(cloud)
        price = req.max_price if req.max_price is not None else config.clouds[cloud].max_price
        pending = items.setdefault((cloud, req.vm_type, image, flavor, price), _Pending())
        pending.count += n
        if req.keep_alive_minutes is not None:
            pending.keep_alive = max(pending.keep_alive or 0, req.keep_alive_minutes)
        placed += n
        if placed == want:
            break
        blocked.append(f"{cloud} is at its limits")
    return placed, "; ".join(blocked) or None


def _backoff_until(
    backed_off: Mapping[str, datetime], cloud: str, image: str, now: datetime | None
) -> datetime | None:
    for key in (cloud, f"{cloud}/{image}"):
        until = backed_off.get(key)
        if until is not None and (now is None or until > now):
            return until
    return None
