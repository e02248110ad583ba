"""Demand: idle jobs grouped into VM requirements, minus what is already coming.

``compute_demand`` is pure: job groups (autoclusters) + supply + configuration in,
a ``Demand`` out. Reading the queue is the pool adapter's job; see csctl/pool.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from csctl.config import Config
from csctl.model import JobGroup, JobProblem, SupplyVM
from csctl.plan import guard
from csctl.plan.fairshare import apportion
from csctl.plan.jobs import NEEDS_ATTRS, JobNeeds, read_needs
from csctl.plan.matching import (
    KB_PER_GB,
    Candidate,
    Matcher,
    Unservable,
    evaluated_attributes,
    unknown_target_clouds,
)
from csctl.plan.packing import Room, job_slot, pack
from csctl.plan.text import shown

SCHEMA = "csctl.demand/1"
MAX_REASON = 300  # a reason names attributes and values; values inside are cut shorter


@dataclass
class VMRequirement:
    """New VMs needed of one type, bootable on ``clouds``, with the jobs' VM wishes."""

    vm_type: str
    clouds: list[str]
    idle_jobs: int = 0
    jobs_on_existing: int = 0
    vms_needed: int = 0
    vms_booting: int = 0
    vms_with_room: int = 0
    images: dict[str, str] = field(default_factory=dict)
    instance_types: dict[str, str] = field(default_factory=dict)
    max_price: float | None = None
    keep_alive_minutes: int | None = None
    high_priority: bool = False
    owners: list[str] = field(default_factory=list)
    # owner, or accounting group where the jobs carry AcctGroup -> its part of vms_needed
    need_by_owner: dict[str, int] = field(default_factory=dict)
    # VMJobPerCore = false jobs: one job per VM, so the VM gets one slot holding all of it
    single_slot: bool = False


@dataclass
class Rejected:
    """Jobs csctl cannot serve, with why (one line per reason)."""

    jobs: int
    job_ids: list[str]
    owner: str
    reasons: list[str]


@dataclass
class Demand:
    """What the queue needs. ``schema`` versions the JSON form ``boot`` reads."""

    requirements: list[VMRequirement]
    rejected: list[Rejected]
    idle_jobs: int
    schema: str = SCHEMA
    warnings: list[str] = field(default_factory=list)

    @property
    def vms_needed(self) -> int:
        return sum(r.vms_needed for r in self.requirements)

    @property
    def need_by_owner(self) -> dict[str, int]:
        """New VMs per owner (or accounting group), over every requirement."""
        total: dict[str, int] = {}
        for req in self.requirements:
            for owner, n in req.need_by_owner.items():
                total[owner] = total.get(owner, 0) + n
        return dict(sorted(total.items()))


# -- the computation ---------------------------------------------------------------------


@dataclass
class _Served:
    needs: JobNeeds
    candidate: Candidate
    count: int
    owner: str
    share_key: str  # AcctGroup where the job carries one, else the owner


@dataclass
class _Need:
    """One VM requirement as served groups join it: job shapes merged, never per job."""

    first: _Served
    vm: tuple[int, int, int]
    shapes: dict[tuple[int, int, int], int] = field(default_factory=dict)
    idle: int = 0
    keep_alive: int = 0
    high_priority: bool = False
    owners: set[str] = field(default_factory=set)
    # share key -> job shape -> jobs: counts, so that parts of a queue judged apart add up
    # exactly to what the whole queue judged at once gives (see ``load``)
    by_share: dict[str, dict[tuple[int, int, int], int]] = field(default_factory=dict)

    def add(self, s: _Served) -> None:
        slot = job_slot(s.needs, self.vm)
        self.shapes[slot] = self.shapes.get(slot, 0) + s.count
        self.idle += s.count
        self.keep_alive = max(self.keep_alive, s.needs.keep_alive_minutes or 0)
        self.high_priority = self.high_priority or s.needs.high_priority
        self.owners.add(s.owner)
        shares = self.by_share.get(s.share_key)
        if shares is None:
            shares = self.by_share[s.share_key] = {}
        shares[slot] = shares.get(slot, 0) + s.count

    def merge(self, later: _Need) -> None:
        """Add the groups of ``later``, judged after this one's (its first stays first)."""
        for slot, count in later.shapes.items():
            self.shapes[slot] = self.shapes.get(slot, 0) + count
        self.idle += later.idle
        self.keep_alive = max(self.keep_alive, later.keep_alive)
        self.high_priority = self.high_priority or later.high_priority
        self.owners |= later.owners
        for key, counts in later.by_share.items():
            shares = self.by_share.setdefault(key, {})
            for slot, count in counts.items():
                shares[slot] = shares.get(slot, 0) + count

    def load(self) -> dict[str, float]:
        """Share key -> VMs' worth its jobs fill (each job's largest fraction of a VM)."""
        cpus, memory, disk = self.vm[0], self.vm[1] or 1, self.vm[2] or 1
        return {
            key: sum(n * max(s[0] / cpus, s[1] / memory, s[2] / disk) for s, n in counts.items())
            for key, counts in self.by_share.items()
        }


def _requirement_key(s: _Served, known: dict[tuple[Any, ...], tuple[Any, ...]]) -> tuple[Any, ...]:
    """The requirement a served group joins: VM type, clouds and what the jobs ask of
    the VM on each. ``known`` remembers it per distinct wish (most groups share one)."""
    needs = s.needs
    wish = (
        s.candidate,
        needs.images,
        needs.instance_types,
        needs.max_price,
        needs.high_priority,
        needs.whole_vm,
    )
    key = known.get(wish)
    if key is None:
        clouds = s.candidate.clouds
        images = tuple((c, needs.image_for(c) or "") for c in clouds)
        flavors = tuple((c, needs.instance_type_for(c) or "") for c in clouds)
        key = known[wish] = (
            s.candidate.vm_type,
            clouds,
            images,
            flavors,
            needs.max_price,
            needs.high_priority,
            needs.whole_vm,  # whole-VM jobs get VMs of one slot: never mixed with others
        )
    return key


def _attribute(group: JobGroup, name: str) -> Any:
    """One attribute's value, None when the job lacks it or the library cannot hand it
    over. An ad built from checked JSON says which names it has and the plain values of
    some: no look-up (nor a KeyError raised inside the library) for those."""
    ad = group.ad
    if ad is None:
        return None
    known = guard.known_values(ad)
    if known is not None:
        value = known.get(name)
        if value is not guard.ASK:
            return value  # None: the job lacks it
    try:
        return ad.get(name)
    except Exception:  # noqa: BLE001 - a value the library cannot hand over is no value
        return None


def _owner(group: JobGroup) -> str:
    owner = _attribute(group, "Owner")
    return _shown_owner(owner) if isinstance(owner, str) else "?"


def _share_key(group: JobGroup, owner: str) -> str:
    """Whom fair share counts a job against: its accounting group, else its owner."""
    acct = _attribute(group, "AcctGroup")
    return _shown_owner(acct) if isinstance(acct, str) and acct else owner


@functools.lru_cache(maxsize=1024)
def _shown_owner(owner: str) -> str:
    return shown(owner)  # once per owner: a queue has far fewer owners than groups


def _judged(
    groups: Iterable[JobGroup], config: Config, warnings: list[str], matcher: Matcher | None
) -> Iterator[tuple[JobGroup, _Served | Rejected]]:
    """Each group served or rejected, one at a time: nothing here holds a group's ad
    once it is judged, so groups built lazily (csctl/plan/queue.py) are freed in turn."""
    matcher = matcher or Matcher(config)
    for group in groups:
        try:
            outcome = _classify_one(group, config, matcher, warnings)
        except Exception as exc:  # noqa: BLE001 - one job never stops autoscaling for everyone
            outcome = JobProblem("job", f"cannot be evaluated ({guard.one_line(exc)})")
        if isinstance(outcome, _Served):
            yield group, outcome
        elif isinstance(outcome, JobProblem):
            reason = f"{outcome.attribute}: {outcome.message}"
            yield group, Rejected(group.count, group.sample_ids, _owner(group), [shown(reason, MAX_REASON)])
        else:
            reasons = [shown(r, MAX_REASON) for r in outcome.reasons]
            yield group, Rejected(group.count, group.sample_ids, _owner(group), reasons)


def _classify_one(
    group: JobGroup, config: Config, matcher: Matcher, warnings: list[str]
) -> _Served | JobProblem | Unservable:
    # ads from a schedd were built by the library already; their text is checked here,
    # before anything evaluates them (a condor_q -json file is checked as it is read)
    problem = group.problem or guard.ad_problem(group.ad)
    needs = problem or _read_group(group)
    if isinstance(needs, JobProblem):
        return needs
    unknown = unknown_target_clouds(config, needs) if needs.target_clouds is not None else ()
    if unknown and len(unknown) < len(needs.target_clouds or ()):
        ids = ", ".join(shown(i) for i in group.sample_ids[:3])
        warnings.append(f"job {ids}: TargetClouds names unknown cloud(s) {shown(', '.join(unknown))}")
    choice = matcher.choose(group.ad, needs)
    if isinstance(choice, Unservable):
        return choice
    owner = _owner(group)
    return _Served(needs, choice, group.count, owner, _share_key(group, owner))


def _read_group(group: JobGroup) -> JobNeeds | JobProblem:
    values = evaluated_attributes(group.ad, NEEDS_ATTRS)
    if isinstance(values, JobProblem):
        return values
    return read_needs(values)


@dataclass
class Judged:
    """Job groups judged (served or rejected), before any supply is used or VM packed.

    Parts of one queue may be judged apart (in separate processes) and merged in queue
    order: the merge gives what judging the whole queue at once gives.
    """

    needs: dict[tuple[Any, ...], _Need] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    # groups whose data could not be read at all: a queue yields them last
    unread: list[Rejected] = field(default_factory=list)
    idle: int = 0
    warnings: list[str] = field(default_factory=list)

    def merge(self, later: Judged) -> None:
        """Add ``later``, the judgement of the groups that follow this one's."""
        for key, need in later.needs.items():
            mine = self.needs.get(key)
            if mine is None:
                self.needs[key] = need
            else:
                mine.merge(need)
        self.rejected += later.rejected
        self.unread += later.unread
        self.idle += later.idle
        self.warnings += later.warnings


def judge(groups: Iterable[JobGroup], config: Config, matcher: Matcher | None = None) -> Judged:
    """Serve or reject each group, and join the served ones into VM requirements."""
    judged = Judged()
    by_key = judged.needs
    known: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for group, outcome in _judged(groups, config, judged.warnings, matcher):
        if isinstance(outcome, Rejected):
            (judged.rejected if group.problem is None else judged.unread).append(outcome)
            judged.idle += outcome.jobs
            continue
        key = _requirement_key(outcome, known)
        need = by_key.get(key)
        if need is None:
            vm_type = config.vm_types[outcome.candidate.vm_type]
            vm = (vm_type.cpus, vm_type.memory, vm_type.disk * KB_PER_GB)
            need = by_key[key] = _Need(outcome, vm)
        need.add(outcome)
        judged.idle += outcome.count
    return judged


def settle(judged: Judged, supply: Iterable[SupplyVM]) -> Demand:
    """The demand of judged groups after ``supply`` (booting VMs, free room on joined
    ones) is used, high-priority requirements first; the rest packed onto new VMs."""
    bins = [
        Room(vm.cpus, vm.memory, vm.disk_kb, supply=vm, one_job=vm.single_slot)
        for vm in sorted(supply, key=lambda v: (not v.booting, v.csctl_id))
    ]
    order = sorted(judged.needs.values(), key=lambda n: not n.high_priority)
    requirements = [_requirement(need, bins) for need in order]
    return Demand(requirements, judged.rejected + judged.unread, judged.idle, warnings=judged.warnings)


Judge = Callable[[Iterable[JobGroup], Config], Judged]


def compute_demand(
    groups: Iterable[JobGroup],
    supply: Iterable[SupplyVM],
    config: Config,
    matcher: Matcher | None = None,
    judge_with: Judge | None = None,
) -> Demand:
    """What the queue needs: VM requirements per type and clouds, after using ``supply``.

    Supply (booting VMs, free room on joined ones) is consumed first, high-priority
    requirements before the others; the rest is packed onto new VMs of the type.
    ``matcher`` (built for ``config``) may be kept across calls by a caller that judges
    the same kinds of jobs again and again (the simulator's cycles); by default each
    call builds its own. ``judge_with`` stands in for ``judge`` (csctl/engine/judging.py
    judges a large queue in parts, in parallel).
    """
    if judge_with is None:
        return settle(judge(groups, config, matcher), supply)
    return settle(judge_with(groups, config), supply)


def _requirement(need: _Need, bins: list[Room]) -> VMRequirement:
    first = need.first
    type_name, clouds = first.candidate.vm_type, first.candidate.clouds
    mine = [
        b for b in bins if b.supply is not None and b.supply.vm_type == type_name and b.supply.cloud in clouds
    ]
    used_before = {id(b) for b in mine if b.used}
    on_existing, new_vms = pack(list(need.shapes.items()), need.vm, mine)
    touched = [b for b in mine if b.used and id(b) not in used_before]
    return VMRequirement(
        vm_type=type_name,
        clouds=list(clouds),
        idle_jobs=need.idle,
        jobs_on_existing=on_existing,
        vms_needed=new_vms,
        vms_booting=sum(1 for b in touched if b.supply and b.supply.booting),
        vms_with_room=sum(1 for b in touched if b.supply and not b.supply.booting),
        images={c: i for c in clouds if (i := first.needs.image_for(c))},
        instance_types={c: i for c in clouds if (i := first.needs.instance_type_for(c))},
        max_price=first.needs.max_price,
        keep_alive_minutes=need.keep_alive or None,
        high_priority=need.high_priority,
        owners=sorted(need.owners),
        need_by_owner=apportion(new_vms, need.load()),
        single_slot=first.needs.whole_vm,
    )
