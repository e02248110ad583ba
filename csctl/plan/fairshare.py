"""Fair share: who gets the new VMs when the clouds cannot give everyone what they ask.

A pure decision over *asks* (one owner's VMs of one requirement) and a ``place``
function that books capacity. ``policy.fair_share`` picks the split:

- ``"equal"``: max-min fair (progressive filling). Owners are served one step at a
  time, the one with the fewest VMs first, until each has all it asked for or nothing
  it asked for can be placed any more.
- ``"htcondor"``: the same filling, weighted by the negotiator's effective user
  priorities (``condor_userprio``): a lower priority value is a larger share, the
  weight being 1 / priority, as the negotiator itself divides the pool.
- ``"off"``: first come, first served in demand's order (csctl before fair share).

Jobs with ``VMHighPriority`` come first whatever the policy: their asks are filled
before any other ask, fairly among themselves. An "owner" is the job's ``AcctGroup``
where it carries one, else its ``Owner``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

POLICIES = ("equal", "htcondor", "off")

# requirement index, owner, VMs wanted -> VMs booked. Capacity only ever shrinks, so an
# answer short of the wish means no later call can place any VM of that requirement.
Place = Callable[[int, str, int], int]


@dataclass(frozen=True)
class Ask:
    """``vms`` new VMs of requirement number ``requirement`` wanted by ``owner``."""

    owner: str
    requirement: int
    vms: int
    high_priority: bool = False


def apportion(total: int, load: dict[str, float]) -> dict[str, int]:
    """``total`` VMs split in proportion to ``load`` by largest remainders (ties to the
    name that sorts first), so the parts are whole VMs that add up to ``total``."""
    if total <= 0 or not load:
        return {}
    if sum(load.values()) <= 0:
        load = dict.fromkeys(load, 1.0)  # nothing to weigh by: equal parts
    whole = sum(load.values())
    exact = {key: total * value / whole for key, value in load.items()}
    parts = {key: int(value) for key, value in exact.items()}
    rest = total - sum(parts.values())
    for key in sorted(exact, key=lambda k: (parts[k] - exact[k], k))[:rest]:
        parts[key] += 1
    return {key: n for key, n in sorted(parts.items()) if n}


def need_by_owner(parts: Mapping[str, int], vms_needed: int) -> dict[str, int]:
    """A requirement's ``vms_needed`` per owner, from its ``need_by_owner`` ``parts``. A
    demand file written before owners were kept (or edited by hand) has no parts, or parts
    that do not add up: those VMs go to one unnamed owner (""), or are split again in
    proportion to the parts given."""
    given = {k: v for k, v in parts.items() if isinstance(v, int) and v > 0}
    if sum(given.values()) == vms_needed:
        return given
    if not given:
        return {"": vms_needed} if vms_needed > 0 else {}
    return apportion(vms_needed, {k: float(v) for k, v in given.items()})


def weights(
    policy: str, owners: Iterable[str], priorities: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Each owner's weight in the filling: 1 for ``"equal"``; 1 / effective priority for
    ``"htcondor"``.

    ``priorities`` are the accountant's records by their ``Name`` (``user@domain``,
    ``group.user@domain`` or a group's own name). An owner is matched by the name
    before ``@``; an accounting group without a record of its own takes its best
    member's priority. An owner the negotiator does not know yet has no usage, so it
    counts as the best-placed known owner; with no priorities at all, shares are equal.
    """
    names = sorted(set(owners))
    if policy != "htcondor" or not priorities:
        return dict.fromkeys(names, 1.0)
    known: dict[str, float] = {}
    for name, priority in priorities.items():
        if priority > 0:
            key = name.split("@", 1)[0]
            known[key] = min(priority, known.get(key, priority))
    found = {owner: p for owner in names if (p := _priority_of(owner, known)) is not None}
    best = min(found.values(), default=1.0)
    return {owner: 1.0 / found.get(owner, best) for owner in names}


def _priority_of(owner: str, known: Mapping[str, float]) -> float | None:
    if owner in known:
        return known[owner]
    members = [p for name, p in known.items() if name.startswith(owner + ".")]
    return min(members) if members else None


def allocate(
    asks: Sequence[Ask], policy: str, place: Place, owner_weights: Mapping[str, float] | None = None
) -> dict[tuple[str, int], int]:
    """VMs granted per (owner, requirement), booked through ``place``.

    Deterministic: the same asks and capacity give the same grants (ties go to the
    owner whose name sorts first). Never books more than ``place`` accepts, so never
    more than the limits it enforces.
    """
    granted: dict[tuple[str, int], int] = {}
    for first in (True, False):  # VMHighPriority asks before all others
        phase = [a for a in asks if a.high_priority is first and a.vms > 0]
        if policy == "off":
            dead: set[int] = set()
            for ask in phase:
                if ask.requirement not in dead:
                    n = place(ask.requirement, ask.owner, ask.vms)
                    _book(granted, ask, n)
                    if n < ask.vms:
                        dead.add(ask.requirement)
        else:
            _fill(phase, owner_weights or {}, place, granted)
    return granted


def _book(granted: dict[tuple[str, int], int], ask: Ask, n: int) -> None:
    if n:
        key = (ask.owner, ask.requirement)
        granted[key] = granted.get(key, 0) + n


def _fill(
    asks: Sequence[Ask], owner_weights: Mapping[str, float], place: Place, granted: dict[tuple[str, int], int]
) -> None:
    """Progressive filling: pop the owner with the lowest VMs / weight, raise it just past
    the next owner's level, push it back. Each turn books a VM or retires an owner, and
    whole steps are booked at once, so the cost follows the VMs booked, not the jobs."""
    by_owner: dict[str, list[Ask]] = {}
    for ask in asks:
        by_owner.setdefault(ask.owner, []).append(ask)
    left = {(a.owner, a.requirement): 0 for a in asks}
    for a in asks:
        left[(a.owner, a.requirement)] += a.vms
    dead: set[int] = set()  # requirements nothing more can be placed for
    position = dict.fromkeys(by_owner, 0)
    total = dict.fromkeys(by_owner, 0)
    heap = [(0.0, owner) for owner in sorted(by_owner)]

    def live(owner: str, i: int) -> int:
        """The first of the owner's asks from ``i`` on that may still be booked."""
        mine = by_owner[owner]
        while i < len(mine) and (mine[i].requirement in dead or left[(owner, mine[i].requirement)] == 0):
            i += 1
        return i

    while heap:
        level, owner = heapq.heappop(heap)
        mine, i = by_owner[owner], live(owner, position[owner])
        if i == len(mine):
            continue  # served in full, or nothing of what is left can be placed
        weight = owner_weights.get(owner, 1.0)
        if heap:
            step = max(1, math.ceil((heap[0][0] - level) * weight - 1e-9))
        else:
            step = sum(left[(owner, a.requirement)] for a in mine[i:] if a.requirement not in dead)
        got = 0
        while got < step and (i := live(owner, i)) < len(mine):
            key = (owner, mine[i].requirement)
            want = min(step - got, left[key])
            n = place(mine[i].requirement, owner, want)
            if n:
                granted[key] = granted.get(key, 0) + n
            got += n
            left[key] -= n
            if n < want:
                dead.add(mine[i].requirement)
        position[owner] = i
        total[owner] += got
        heapq.heappush(heap, (total[owner] / weight, owner))
