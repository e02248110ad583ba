"""Idle jobs into autoclusters: from the schedd's ads, or from ``condor_q -json`` data.

A ``condor_q -json`` file is written by anyone, so every value is checked on the JSON
side (csctl/plan/guard.py) before the ClassAd library sees it, and jobs are grouped on
their JSON values before any ad is built: 100,000 jobs of a few shapes cost a few ads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from csctl.model import JobGroup, JobProblem
from csctl.plan import guard
from csctl.plan.jobs import ID_ATTRS, PROJECTION

SAMPLE_IDS = 5
_ID_LINE = re.compile(r"^(?:ClusterId|ProcId|JobStatus) = .*\n", re.MULTILINE)
IDLE = 1
_EXPR = ("/Expr(", ")/")
_WANTED = frozenset(PROJECTION) - {*ID_ATTRS}


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


@dataclass
class _Members:
    fields: dict[str, Any]
    count: int = 0
    sample_ids: list[str] = field(default_factory=list)


def _json_id(raw: dict[str, Any]) -> str:
    parts = (raw.get(name, "?") for name in ID_ATTRS)
    return ".".join(str(p) if isinstance(p, (str, int)) and not isinstance(p, bool) else "?" for p in parts)


def _key(fields: dict[str, Any]) -> tuple[Any, ...] | None:
    """Equal JSON values (and types: 1, 1.0 and true are three values), or None when a
    value cannot be a key (an array or object: that job is rejected on its own)."""
    key = tuple((name, type(value).__name__, value) for name, value in sorted(fields.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def groups_from_json(data: Any, source: str) -> list[JobGroup]:
    """Idle jobs from parsed ``condor_q -json`` output, grouped; unreadable jobs become
    problems. ``source`` names where the data came from (it stands in for the schedd).

    Raises ValueError for data that is not a JSON array at all.
    """
    if not isinstance(data, list):
        raise ValueError("expected a JSON array of job ads (condor_q -json output)")
    members: dict[Any, _Members] = {}
    for index, raw in enumerate(data):
        if not isinstance(raw, dict) or raw.get("JobStatus", IDLE) != IDLE:
            continue
        fields = {name: value for name, value in raw.items() if name in _WANTED}
        key = _key(fields)
        group = members.setdefault(index if key is None else key, _Members(fields))
        group.count += 1
        if len(group.sample_ids) < SAMPLE_IDS:
            group.sample_ids.append(_json_id(raw))
    groups = [_group(m, source) for m in members.values()]
    return [g for g in groups if g.problem is None] + [g for g in groups if g.problem is not None]


def _group(members: _Members, source: str) -> JobGroup:
    ad = _ad_from_json(members.fields)
    if isinstance(ad, JobProblem):
        owner = members.fields.get("Owner")
        kept = {"Owner": owner} if isinstance(owner, str) and not guard.string_problem(owner) else {}
        import classad2

        return JobGroup(classad2.ClassAd(kept), members.count, members.sample_ids, problem=ad)
    return JobGroup(ad, members.count, members.sample_ids, source)


def _ad_from_json(fields: dict[str, Any]) -> Any:
    """A ClassAd from one object of ``condor_q -json`` (expressions as ``/Expr(...)/``),
    or the problem with the first attribute that cannot be read.

    The ad is parsed from one text (one library call, not one per attribute); an
    expression joins that text only when it cannot reach into its neighbours.
    """
    parts = []
    for name, value in fields.items():
        expression = _expression(value)
        problem = _expression_problem(name, expression) if expression is not None else None
        problem = problem or (None if expression is not None else guard.json_value_problem(value))
        if problem:
            return JobProblem(name, problem)
        parts.append(f"{name} = {expression if expression is not None else _literal(value)}")
    try:
        return guard.checked_ad_type()("[" + ";\n".join(parts) + "]")
    except Exception:  # noqa: BLE001 - the parser raises a bare exception type
        return _unparsable(fields)


@functools.lru_cache(maxsize=4096)
def _expression_problem(name: str, expression: str) -> str | None:
    """The checks of one expression, once per distinct text (jobs share most of theirs)."""
    problem = guard.expression_problem(name, expression)
    if problem is None and not guard.self_contained(expression):
        return "expression does not parse"
    return problem


def _unparsable(fields: dict[str, Any]) -> JobProblem:
    """Which expression keeps the ad from parsing (each tried alone)."""
    import classad2

    for name, value in fields.items():
        expression = _expression(value)
        if expression is None:
            continue
        try:
            classad2.ExprTree(expression)
        except Exception:  # noqa: BLE001 - the parser raises a bare exception type
            return JobProblem(name, "expression does not parse")
    return JobProblem(next(iter(fields), "?"), "the job's attributes do not parse together")


def _expression(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(_EXPR[0]) and value.endswith(_EXPR[1]):
        return value[len(_EXPR[0]) : -len(_EXPR[1])]
    return None


def _literal(value: Any) -> str:
    """A JSON literal (already checked) in ClassAd syntax."""
    import classad2

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return str(classad2.quote(value))
