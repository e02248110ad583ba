"""``csctl demand --json`` read back (``boot --demand FILE``): the csctl.demand/1 schema."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from csctl.plan.demand import SCHEMA, Demand, Rejected, VMRequirement

_T = TypeVar("_T")


def demand_from_json(data: Any) -> Demand:
    """A Demand read back from ``csctl demand --json``; ValueError naming what is wrong."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"expected csctl demand --json output (schema {SCHEMA}), got {found!r}")
    try:
        requirements = [_known(VMRequirement, r) for r in data["requirements"]]
        rejected = [_known(Rejected, r) for r in data.get("rejected", [])]
        return Demand(requirements, rejected, int(data["idle_jobs"]), warnings=list(data.get("warnings", [])))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed demand: {exc}") from None


_FIELDS: dict[type, frozenset[str]] = {}


def _known(cls: type[_T], data: dict[str, Any]) -> _T:
    """``cls(**data)`` less the fields ``cls`` does not know: csctl.demand/1 grows by new
    fields, and a reader ignores those it does not know (the schema's promise)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
