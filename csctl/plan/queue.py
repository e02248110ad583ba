"""Idle jobs into autoclusters: from the schedd's ads, or from ``condor_q -json`` data."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from csctl.model import JobGroup, JobProblem
from csctl.plan.jobs import PROJECTION

SAMPLE_IDS = 5
_ID_LINE = re.compile(r"^(?:ClusterId|ProcId|JobStatus) = .*\n", re.MULTILINE)
IDLE = 1


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


def groups_from_json(data: Any, source: str) -> list[JobGroup]:
    """Idle jobs from parsed ``condor_q -json`` output, grouped; unreadable jobs become
    problems. ``source`` names where the data came from (it stands in for the schedd).

    Raises ValueError for data that is not a JSON array at all.
    """
    if not isinstance(data, list):
        raise ValueError("expected a JSON array of job ads (condor_q -json output)")
    ads, problems = [], []
    wanted = set(PROJECTION) | {"JobStatus"}
    for raw in data:
        if not isinstance(raw, dict):
            continue
        if raw.get("JobStatus", IDLE) != IDLE:
            continue
        fields = {k: v for k, v in raw.items() if k in wanted}
        ad = _ad_from_json(fields)
        if isinstance(ad, JobGroup):
            problems.append(ad)
        else:
            ads.append(ad)
    return group_ads(ads, schedd=source) + problems


def _ad_from_json(fields: dict[str, Any]) -> Any:
    """A ClassAd from one object of ``condor_q -json`` (expressions as ``/Expr(...)/``),
    or a one-job problem group naming the attribute that cannot be read."""
    import classad2

    ad = classad2.ClassAd()
    for name, value in fields.items():
        if isinstance(value, str) and value.startswith("/Expr(") and value.endswith(")/"):
            try:
                ad[name] = classad2.ExprTree(value[len("/Expr(") : -len(")/")])
            except Exception:  # noqa: BLE001 - the parser raises a bare exception type
                return _unreadable(fields, name, "expression does not parse")
        elif isinstance(value, (str, int, float, bool)):
            ad[name] = value
        else:
            return _unreadable(fields, name, f"unsupported JSON value {type(value).__name__}")
    return ad


def _unreadable(fields: dict[str, Any], attribute: str, detail: str) -> JobGroup:
    """A group of one job whose ad cannot be read, naming the attribute at fault."""
    import classad2

    keep = {k: v for k, v in fields.items() if k in ("ClusterId", "ProcId", "Owner")}
    keep = {k: v for k, v in keep.items() if isinstance(v, (str, int))}
    return JobGroup(
        ad=classad2.ClassAd(keep),
        count=1,
        sample_ids=[f"{keep.get('ClusterId', '?')}.{keep.get('ProcId', '?')}"],
        problem=JobProblem(attribute, detail),
    )
