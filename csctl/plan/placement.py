"""Where to boot: a pure function from demand, the clouds' instances and limits to a BootPlan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from csctl.config import Config
from csctl.model import Instance, Quota
from csctl.plan import fairshare
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.rooms import Room, Size, rooms

SCHEMA = "csctl.bootplan/1"
NO_CLOUD = "no cloud can take it"


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
    owners: dict[str, int] = field(default_factory=dict)  # owner (or accounting group) -> VMs
    single_slot: bool = False  # for VMJobPerCore = false jobs: the VM has one slot, all of it


@dataclass(frozen=True)
class Unplaced:
    """VMs a requirement needs that this cycle cannot boot, and why."""

    vm_type: str
    count: int
    reason: str
    owners: dict[str, int] = field(default_factory=dict)  # owner -> VMs left out


@dataclass(frozen=True)
class OwnerShare:
    """What one owner (or accounting group) asked, what it gets, and why."""

    owner: str
    needed: int
    granted: int
    weight: float
    why: str


@dataclass
class BootPlan:
    """What ``boot`` will ask of each cloud; ``--dry-run`` prints exactly this.
    ``notes`` say where the plan knew less than usual (a quota it could not read)."""

    items: list[BootItem]
    unplaced: list[Unplaced]
    schema: str = SCHEMA
    fair_share: str = "equal"
    owners: list[OwnerShare] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(item.count for item in self.items)


# cloud, type, image, flavor, price, one slot per VM
_ItemKey = tuple[str, str, str, str | None, float | None, bool]


@dataclass
class _Pending:
    """One boot request taking shape: requirements that share a cloud, type and image."""

    count: int = 0
    keep_alive: int | None = None
    owners: dict[str, int] = field(default_factory=dict)


def plan_boot(
    demand: Demand,
    instances: Sequence[Instance],
    config: Config,
    backed_off: Mapping[str, datetime] | None = None,
    now: datetime | None = None,
    unlisted: Iterable[str] | Mapping[str, str] = (),
    quotas: Mapping[str, Quota] | None = None,
    priorities: Mapping[str, float] | None = None,
) -> BootPlan:
    """Place the VMs ``demand`` needs on clouds, within limits, highest priority cloud first,
    split among owners by ``policy.fair_share`` when not all of it fits.

    ``backed_off`` maps a cloud name, or ``"cloud/image"``, to the time until which
    it must not be asked (failure backoff); ``now`` is compared against it.
    Never plans more than a cloud's limits (counting its live instances), more than the
    ``quotas`` its API reported this cycle (a Quota with ``error`` set: unknown, so the
    configured limits alone), or more than ``policy.max_new_vms_per_cycle`` in all.
    Clouds in ``unlisted`` (a mapping: with the list call's error) could not be listed
    this cycle: their usage is unknown, so nothing is booted there. ``priorities`` are the
    negotiator's effective user priorities, for ``fair_share = "htcondor"``.
    """
    by_cloud = rooms(config, instances, quotas or {}, unlisted)
    requirements = [r for r in demand.requirements if r.vms_needed > 0]
    placer = _Placer(requirements, by_cloud, config, dict(backed_off or {}), now)
    asks = [
        fairshare.Ask(owner, i, n, req.high_priority)
        for i, req in enumerate(requirements)
        for owner, n in fairshare.need_by_owner(req.need_by_owner, req.vms_needed).items()
    ]
    policy = config.policy.fair_share
    weights = fairshare.weights(policy, {a.owner for a in asks}, priorities)
    granted = fairshare.allocate(asks, policy, placer.place, weights)
    plan_items = [
        BootItem(cloud, vm_type, p.count, image, flavor, price, p.keep_alive, p.owners, single)
        for (cloud, vm_type, image, flavor, price, single), p in placer.items.items()
    ]
    plan = BootPlan(plan_items, placer.unplaced(asks, granted), fair_share=policy)
    plan.owners = _shares(asks, granted, weights, placer.why, policy)
    plan.notes = [
        f"cloud {name}: quota unknown ({room.quota_error}); placed within its configured limits only"
        for name, room in by_cloud.items()
        if room.quota_error is not None
    ]
    return plan


def _shares(
    asks: Sequence[fairshare.Ask],
    granted: Mapping[tuple[str, int], int],
    weights: Mapping[str, float],
    why: Mapping[int, str],
    policy: str,
) -> list[OwnerShare]:
    """Each named owner's need, grant and the reason it got less, for ``--dry-run``."""
    needed: dict[str, int] = {}
    short: dict[str, list[str]] = {}
    for ask in asks:
        if not ask.owner:
            continue  # a demand file written before owners were kept
        needed[ask.owner] = needed.get(ask.owner, 0) + ask.vms
        if granted.get((ask.owner, ask.requirement), 0) < ask.vms:
            reasons = short.setdefault(ask.owner, [])
            reason = why.get(ask.requirement, NO_CLOUD)
            if reason not in reasons:
                reasons.append(reason)
    rule = {
        "equal": f"equal share among {len(needed)} owner(s)",
        "htcondor": "share by the negotiator's user priority",
        "off": "first come, first served (policy.fair_share = off)",
    }[policy]
    got = dict.fromkeys(needed, 0)
    for (owner, _), n in granted.items():
        if owner:
            got[owner] += n
    shares = []
    for owner in sorted(needed):
        why_less = f"{rule}; " + "; ".join(short[owner]) if owner in short else "all it needs"
        shares.append(
            OwnerShare(owner, needed[owner], got[owner], round(weights.get(owner, 1.0), 6), why_less)
        )
    return shares


class _Placer:
    """Books VMs of the requirements on the clouds' rooms, as fair share asks."""

    def __init__(
        self,
        requirements: Sequence[VMRequirement],
        rooms: dict[str, Room],
        config: Config,
        backed_off: Mapping[str, datetime],
        now: datetime | None,
    ) -> None:
        self.requirements, self.rooms, self.config = requirements, rooms, config
        self.backed_off, self.now = backed_off, now
        self.budget = config.policy.max_new_vms_per_cycle
        self.items: dict[_ItemKey, _Pending] = {}
        self.placed = [0] * len(requirements)
        self.why: dict[int, str] = {}  # requirement -> why the last booking came up short
        order = {name: i for i, name in enumerate(config.clouds)}
        self.clouds = [_clouds_by_priority(r, config, order) for r in requirements]
        self.live = [list(clouds) for clouds in self.clouds]  # those that may still take a VM

    def place(self, index: int, owner: str, want: int) -> int:
        """Book up to ``want`` VMs of requirement ``index`` for ``owner``; how many booked."""
        capped = min(want, self.budget)
        placed, why = self._book(index, owner, capped)
        self.budget -= placed
        self.placed[index] += placed
        if placed < capped:
            self.why[index] = why or NO_CLOUD
        elif placed < want:
            cap = self.config.policy.max_new_vms_per_cycle
            self.why[index] = f"policy.max_new_vms_per_cycle ({cap}) reached"
        return placed

    def unplaced(
        self, asks: Sequence[fairshare.Ask], granted: Mapping[tuple[str, int], int]
    ) -> list[Unplaced]:
        """What each requirement still lacks, by owner, and why."""
        left: dict[int, dict[str, int]] = {}
        for ask in asks:
            missing = ask.vms - granted.get((ask.owner, ask.requirement), 0)
            if missing and ask.owner:
                left.setdefault(ask.requirement, {})[ask.owner] = missing
        return [
            Unplaced(req.vm_type, req.vms_needed - self.placed[i], self.why.get(i, NO_CLOUD), left.get(i, {}))
            for i, req in enumerate(self.requirements)
            if self.placed[i] < req.vms_needed
        ]

    def _book(self, index: int, owner: str, want: int) -> tuple[int, str | None]:
        """Place up to ``want`` VMs of one requirement; return how many, and why not more.

        A cloud that cannot take one more VM of the requirement (no image, backed off,
        full) leaves its list of live clouds for good: rooms only shrink in one plan, so
        each booking looks at the clouds that may still take it, not at all of them."""
        req = self.requirements[index]
        live = self.live[index]
        placed = 0
        for cloud in list(live):
            image = self._image(req, cloud)
            if image is not None and _backoff_until(self.backed_off, cloud, image, self.now) is None:
                room, size = self.rooms[cloud], self._size(req, cloud)
                n = min(want - placed, room.fits(size))
                if n > 0:
                    room.take(n, size)
                    self._add_item(req, cloud, image, owner, n)
                    placed += n
                    if placed == want:
                        break
            live.remove(cloud)
        return placed, None if placed == want else self._why_not(index)

    def _why_not(self, index: int) -> str | None:
        """Why no cloud of the requirement takes one more VM, cloud by cloud."""
        req = self.requirements[index]
        blocked = []
        for cloud in self.clouds[index]:
            image = self._image(req, cloud)
            if image is None:
                continue
            until = _backoff_until(self.backed_off, cloud, image, self.now)
            if until is not None:
                blocked.append(f"{cloud} backed off until {until:%H:%M:%S}")
            else:
                blocked.append(self.rooms[cloud].full(cloud, self._size(req, cloud)))
        return "; ".join(blocked) or None

    def _image(self, req: VMRequirement, cloud: str) -> str | None:
        return req.images.get(cloud) or self.config.vm_types[req.vm_type].images.get(cloud)

    def _flavor_price(self, req: VMRequirement, cloud: str) -> tuple[str | None, float | None]:
        flavor = req.instance_types.get(cloud) or self.config.vm_types[req.vm_type].flavors.get(cloud)
        price = req.max_price if req.max_price is not None else self.config.clouds[cloud].max_price
        return flavor, price

    def _size(self, req: VMRequirement, cloud: str) -> Size:
        """The VM as the cloud's limits count it (a priced VM is a spot VM)."""
        vm_type = self.config.vm_types[req.vm_type]
        flavor, price = self._flavor_price(req, cloud)
        return Size(vm_type.cpus, vm_type.memory, vm_type.disk, flavor, price is not None)

    def _add_item(self, req: VMRequirement, cloud: str, image: str, owner: str, n: int) -> None:
        flavor, price = self._flavor_price(req, cloud)
        key = (cloud, req.vm_type, image, flavor, price, req.single_slot)
        pending = self.items.setdefault(key, _Pending())
        pending.count += n
        if owner:
            pending.owners[owner] = pending.owners.get(owner, 0) + n
        if req.keep_alive_minutes is not None:
            pending.keep_alive = max(pending.keep_alive or 0, req.keep_alive_minutes)


def _clouds_by_priority(req: VMRequirement, config: Config, order: Mapping[str, int]) -> list[str]:
    clouds = [c for c in req.clouds if c in config.clouds and config.clouds[c].enabled]
    return sorted(clouds, key=lambda c: (-config.clouds[c].priority, order[c]))


def _backoff_until(
    backed_off: Mapping[str, datetime], cloud: str, image: str, now: datetime | None
) -> datetime | None:
    for key in (cloud, f"{cloud}/{image}"):
        until = backed_off.get(key)
        if until is not None and (now is None or until > now):
            return until
    return None
