"""Idle jobs into autoclusters: from the schedd's ads, or from ``condor_q -json`` data.

A ``condor_q -json`` file is written by anyone, so every value is checked on the JSON
side (csctl/plan/guard.py) before the ClassAd library sees it, and jobs are grouped on
their JSON values before any ad is built: 100,000 jobs of a few shapes cost a few ads.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from csctl.model import JobGroup, JobProblem
from csctl.plan import guard
from csctl.plan.jobs import ID_ATTRS, PROJECTION
from csctl.plan.jsonarray import JSON_SPACE, ArrayReader

SAMPLE_IDS = 5
_T = TypeVar("_T")
_ID_LINE = re.compile(r"^(?:ClusterId|ProcId|JobStatus) = .*\n", re.MULTILINE)
IDLE = 1
_EXPR = ("/Expr(", ")/")
_WANTED = {name: name for name in PROJECTION if name not in ID_ATTRS}
_SHARED_CHARS = 64  # shorter strings (owners, ``/Expr(DiskUsage)/``) repeat: one copy each
_MAX_ORDERS = 1_000
_PLAIN = re.compile(r"[A-Za-z0-9_.@+-]*")
# a listing of longer names (all of a job's, even those csctl drops) is sorted afresh for
# each job: what is remembered stays under _MAX_ORDERS x this many characters
_LAYOUT_CHARS = 2_000
NOT_AN_ARRAY = "expected a JSON array of job ads (condor_q -json output)"


def job_id(ad: Any) -> str:
    """``cluster.proc`` of a job ad ("?" for parts it lacks)."""
    return f"{ad.get('ClusterId', '?')}.{ad.get('ProcId', '?')}"


def group_ads(ads: Iterable[Any], schedd: str = "") -> list[JobGroup]:
    """Group job ads whose significant attributes are identical (one autocluster each).

    The key is the ad's own text without its ids: the cheapest exact key the
    bindings offer (one call per ad), which keeps 100,000 jobs fast.
    """
    groups: dict[str, JobGroup] = {}
    for ad in ads:
        key = _ID_LINE.sub("", ad.printOld())
        group = groups.get(key)
        if group is None:
            groups[key] = JobGroup(ad=ad, count=1, sample_ids=[job_id(ad)], schedd=schedd)
            continue
        group.count += 1
        if len(group.sample_ids) < SAMPLE_IDS:
            group.sample_ids.append(job_id(ad))
    return list(groups.values())


class _Members:
    """One group of a JSON queue: its fields (as the grouping key), size and first ids."""

    __slots__ = ("count", "key", "order", "sample_ids")

    def __init__(self, key: tuple[Any, ...], order: tuple[int, ...] | None) -> None:
        self.key = key  # name, value, name, value, ... (names sorted)
        # the first job's order, when not sorted: the sorted positions in its order (shared)
        self.order = order
        self.count = 0
        self.sample_ids: list[str] = []

    @property
    def fields(self) -> dict[str, Any]:
        """The group's attributes, in the first job's order."""
        return dict(self.items())

    def items(self) -> list[tuple[str, Any]]:
        """The group's (name, value) pairs, in the first job's order."""
        key = self.key
        positions = range(len(key) // 2) if self.order is None else self.order
        return [(key[2 * i], _unwrap(key[2 * i + 1])) for i in positions]


def _json_id(raw: dict[str, Any]) -> str:
    return f"{_id_part(raw.get(ID_ATTRS[0]))}.{_id_part(raw.get(ID_ATTRS[1]))}"


def _id_part(value: Any) -> Any:
    return value if type(value) is int or type(value) is str else "?"


class _Tagged(tuple):  # type: ignore[type-arg]
    """A JSON value whose Python equality is wider than JSON's (1 == 1.0 == true), with
    its type beside it; nothing else in a key is a tuple."""

    __slots__ = ()


def _unwrap(value: Any) -> Any:
    return value[1] if type(value) is _Tagged else value


class JsonQueue:
    """Idle jobs of ``condor_q -json`` data grouped as they are added, one job at a time.

    Memory is per group (its projected values, count and a few ids), never per job, and
    no ClassAd is built while reading: iterating builds each group's ad as it is reached,
    readable groups first, so a caller that drops each ad once judged holds one at a time.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._groups: dict[Any, _Members] = {}
        self._orders: dict[tuple[str, ...], tuple[int, ...]] = {}
        # a job's names, as listed -> its projected names sorted, and their order
        self._layouts: dict[tuple[str, ...], tuple[list[str], tuple[int, ...] | None]] = {}

    def add(self, raw: Any) -> None:
        """Count one element of the array (anything but an idle job ad is skipped)."""
        if type(raw) is not dict or raw.get("JobStatus", IDLE) != IDLE:
            return
        listed = tuple(raw)
        layout = self._layouts.get(listed)
        if layout is None:
            layout = self._layout(listed)
        ordered, order = layout
        items: list[Any] = []
        for name in ordered:
            value = raw[name]
            kind = type(value)
            if kind is str:
                items += (name, sys.intern(value) if len(value) <= _SHARED_CHARS else value)
            else:
                items += (name, value if kind is int or value is None else _Tagged((kind.__name__, value)))
        key = tuple(items)
        slot: Any = key
        try:
            group = self._groups.get(key)
        except TypeError:  # an array or object: that job is rejected on its own
            slot, group = len(self._groups), None
        if group is None:
            group = self._groups[slot] = _Members(key, order)
        group.count += 1
        if len(group.sample_ids) < SAMPLE_IDS:
            group.sample_ids.append(_json_id(raw))

    def _layout(self, listed: tuple[str, ...]) -> tuple[list[str], tuple[int, ...] | None]:
        """The projected names of a job listing ``listed``, sorted, and their order (None
        when sorted already); remembered for up to ``_MAX_ORDERS`` listings of short
        names (a file's jobs usually all list the same names in the same order)."""
        # the names of the projection, not the decoder's copies: one string per name, not per job
        names = [_WANTED[name] for name in listed if name in _WANTED]
        ordered = sorted(names)
        layout = ordered, None if names == ordered else self._order(names, ordered)
        if len(self._layouts) < _MAX_ORDERS and sum(map(len, listed)) <= _LAYOUT_CHARS:
            self._layouts[listed] = layout
        return layout

    def _order(self, names: list[str], ordered: list[str]) -> tuple[int, ...] | None:
        """Where each name of one order sits in the sorted key, one tuple shared by every
        group in that order (a file's jobs usually all list their attributes in the same
        order). Past ``_MAX_ORDERS`` distinct orders, the sorted one stands in: memory
        stays bounded, and only which of several bad attributes is named first can change."""
        order = tuple(names)
        positions = self._orders.get(order)
        if positions is None and len(self._orders) < _MAX_ORDERS:
            sorted_at = {name: i for i, name in enumerate(ordered)}
            positions = self._orders[order] = tuple(sorted_at[name] for name in names)
        return positions

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[JobGroup]:
        return _built(list(self._groups.values()), self.source)

    def parts(self, count: int) -> list[tuple[Iterable[JobGroup], int]]:
        """The groups in ``count`` runs of about equal size, in queue order, each with its
        size; a run's groups are built only as it is iterated, its readable ones first."""
        return [(_Run(run, self.source), len(run)) for run in cut(list(self._groups.values()), count)]


def cut(items: Sequence[_T], count: int) -> list[Sequence[_T]]:
    """``items`` in ``count`` runs of about equal size, in order."""
    size = len(items)
    return [items[i * size // count : (i + 1) * size // count] for i in range(count)]


class _Run:
    """Some of a queue's groups, built as they are iterated."""

    def __init__(self, members: Sequence[_Members], source: str) -> None:
        self._members, self._source = members, source

    def __iter__(self) -> Iterator[JobGroup]:
        return _built(self._members, self._source)


def _built(members: Sequence[_Members], source: str) -> Iterator[JobGroup]:
    """Each group's ad built in turn, readable groups first (a problem group comes last)."""
    problems = []
    for one in members:
        group = _group(one, source)
        if group.problem is None:
            yield group
        else:
            problems.append(one)  # built again below: no problem ad is held meanwhile
    for one in problems:
        yield _group(one, source)


def groups_from_json(data: Any, source: str) -> list[JobGroup]:
    """Idle jobs from parsed ``condor_q -json`` output, grouped; unreadable jobs become
    problems. ``source`` names where the data came from (it stands in for the schedd).

    Raises ValueError for data that is not a JSON array at all.
    """
    if not isinstance(data, list):
        raise ValueError(NOT_AN_ARRAY)
    queue = JsonQueue(source)
    for raw in data:
        queue.add(raw)
    return list(queue)


def read_json_queue(read: Callable[[int], str], source: str, chunk: int = 1 << 20) -> JsonQueue:
    """Idle jobs of a ``condor_q -json`` text, grouped while it is decoded one job at a
    time: ``read(n)`` returns up to n more characters ("" at the end), so the text is never
    held whole. ValueError for text that is not JSON or not an array."""
    text = read(chunk)
    while text and not text.strip(JSON_SPACE):
        more = read(chunk)
        text += more
        if not more:
            break
    start = len(text) - len(text.lstrip(JSON_SPACE))
    if text[start : start + 1] != "[":
        # not an array: decode it whole for json's own message, or say what it is not
        json.loads("".join([text, *iter(lambda: read(chunk), "")]))
        raise ValueError(NOT_AN_ARRAY)
    queue = JsonQueue(source)
    for raw in ArrayReader(read, text, start + 1, chunk):
        queue.add(raw)
    return queue


def _group(members: _Members, source: str) -> JobGroup:
    ad = _ad_from_json(members.items())
    if isinstance(ad, JobProblem):
        owner = members.fields.get("Owner")
        kept = {"Owner": owner} if isinstance(owner, str) and not guard.string_problem(owner) else {}
        import classad2

        return JobGroup(classad2.ClassAd(kept), members.count, members.sample_ids, problem=ad)
    return JobGroup(ad, members.count, members.sample_ids, source)


def _ad_from_json(fields: list[tuple[str, Any]]) -> Any:
    """A ClassAd from one object of ``condor_q -json`` (expressions as ``/Expr(...)/``),
    or the problem with the first attribute that cannot be read.

    The ad is parsed from one text (one library call, not one per attribute); an
    expression joins that text only when it cannot reach into its neighbours.
    """
    parts = []
    deep = []
    known: dict[str, Any] = {}
    ask, lowest, highest = guard.ASK, guard.INT64_MIN, guard.INT64_MAX  # locals: read per attribute
    opening, closing, cut = _EXPR[0], _EXPR[1], -len(_EXPR[1])
    for name, value in fields:
        if type(value) is int and lowest <= value <= highest:
            parts.append(f"{name} = {value}")  # the commonest value, checked in place
            known[name] = value
            continue
        known[name] = ask
        if type(value) is str and value.startswith(opening) and value.endswith(closing):
            text = value[len(opening) : cut]
            problem = _expression_problem(name, text)
            if not guard.shallow(text):
                deep.append(name)
        elif type(value) is str:
            problem, text, plain = (_shared_string if len(value) <= _SHARED_CHARS else _string_value)(value)
            if plain:
                known[name] = value
        else:
            problem = guard.json_value_problem(value)
            text = "" if problem else _literal(value)
        if problem:
            return JobProblem(name, problem)
        parts.append(f"{name} = {text}")
    try:
        ad = guard.checked_ad_type()("[" + ";\n".join(parts) + "]")
    except Exception:  # noqa: BLE001 - the parser raises a bare exception type
        return _unparsable(dict(fields))
    if deep:
        ad.deep = frozenset(deep)
    ad.known = known
    return ad


@functools.lru_cache(maxsize=4096)
def _expression_problem(name: str, expression: str) -> str | None:
    """The checks of one expression, once per distinct text (jobs share most of theirs)."""
    problem = guard.expression_problem(name, expression)
    if problem is None and not guard.self_contained(expression):
        return "expression does not parse"
    return problem


def _string_value(value: str) -> tuple[str | None, str, bool]:
    """A string's problem, or its ClassAd literal; and whether it is plain (letters,
    digits, ``_.@+-``: the ad gives it back unchanged, with no escape to undo)."""
    problem = guard.string_problem(value)
    return problem, "" if problem else _literal(value), _PLAIN.fullmatch(value) is not None


# short strings (owners, accounting groups) repeat from job to job: checked and quoted once
_shared_string = functools.lru_cache(maxsize=4096)(_string_value)


def _unparsable(fields: dict[str, Any]) -> JobProblem:
    """Which expression keeps the ad from parsing (each tried alone)."""
    import classad2

    for name, value in fields.items():
        expression = json_expression(value)
        if expression is None:
            continue
        try:
            classad2.ExprTree(expression)
        except Exception:  # noqa: BLE001 - the parser raises a bare exception type
            return JobProblem(name, "expression does not parse")
    return JobProblem(next(iter(fields), "?"), "the job's attributes do not parse together")


def json_expression(value: Any) -> str | None:
    """The expression text of a ``condor_q``/``condor_history -json`` value written as
    ``/Expr(...)/``; None for any other value (a string there is a string literal)."""
    if isinstance(value, str) and value.startswith(_EXPR[0]) and value.endswith(_EXPR[1]):
        return value[len(_EXPR[0]) : -len(_EXPR[1])]
    return None


def _literal(value: Any) -> str:
    """A JSON literal (already checked) in ClassAd syntax."""
    kind = type(value)
    if kind is int or kind is float:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    import classad2

    return str(classad2.quote(value))
