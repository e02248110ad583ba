"""What a replay amounts to: waits, utilisation, VM-hours, boots, per owner and per cloud.

``as_json`` is the ``csctl.simulate/1`` document (docs/simulate.md describes it); every
number in it comes from the simulated clock, never the wall clock, so the same trace,
configuration and seed give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from csctl.engine.simulate.runner import Run, Sample, Settings
from csctl.engine.simulate.traces import Trace
from csctl.engine.simulate.variants import shown_value
from csctl.plan.text import shown

SCHEMA = "csctl.simulate/1"
PERCENTILES = (50, 95, 99)


@dataclass
class Unservable:
    """Jobs no VM type can hold, and demand's reasons."""

    jobs: int
    reasons: list[str]


@dataclass
class Outcome:
    """One variant's replay. Times in seconds, work in hours; ``utilisation`` is busy
    core-hours over provisioned core-hours (booting time included: it is paid for)."""

    label: str
    settings: dict[str, Any]
    jobs: int
    served: int
    unservable: int
    stranded: int
    wait_seconds: dict[str, int | None]
    utilisation: float | None
    busy_core_hours: float
    provisioned_core_hours: float
    vm_hours: float
    boots: int
    boots_by_type: dict[str, int]
    boots_unused: int
    boot_failures: int
    peak_vms: dict[str, int]
    core_hours_by_owner: dict[str, float]
    cycles: int
    simulated_hours: float
    unservable_reasons: list[Unservable] = field(default_factory=list)


@dataclass
class Report:
    """The replay of one trace under each variant of the configuration."""

    trace: dict[str, Any]
    seed: int
    cycle_seconds: int
    boot_time: dict[str, float]
    failure_rate: float
    variants: list[Outcome]
    swept: list[str] = field(default_factory=list)  # the keys whose values set variants apart
    downtimes: list[str] = field(default_factory=list)  # --downtimes: "id (scope, severity)"
    schema: str = SCHEMA
    # one sample per cycle and variant, for --plot; not part of the JSON document
    timelines: list[list[Sample]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The ``csctl.simulate/1`` document."""
        document = asdict(self)
        del document["timelines"]
        return document


def percentile(ordered: Sequence[int], q: float) -> int | None:
    """The nearest-rank ``q``-th percentile of sorted values (None when there are none)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 2)


def outcome(label: str, settings: dict[str, Any], run: Run) -> Outcome:
    """The figures of one replay."""
    stats = run.world.stats
    waits = sorted(stats.waits)
    wait: dict[str, int | None] = {f"p{q}": percentile(waits, q) for q in PERCENTILES}
    wait["max"] = waits[-1] if waits else None
    busy = sum(stats.busy_core_seconds.values())
    reasons = sorted(stats.unservable.items(), key=lambda kv: (-kv[1], kv[0]))
    return Outcome(
        label=label,
        settings=settings,
        jobs=stats.jobs,
        served=len(waits),
        unservable=sum(stats.unservable.values()),
        stranded=run.stranded,
        wait_seconds=wait,
        utilisation=round(busy / stats.core_seconds, 4) if stats.core_seconds else None,
        busy_core_hours=_hours(busy),
        provisioned_core_hours=_hours(stats.core_seconds),
        vm_hours=_hours(stats.vm_seconds),
        boots=stats.boots,
        boots_by_type=dict(sorted(stats.boots_by_type.items())),
        boots_unused=stats.boots_unused,
        boot_failures=stats.boot_failures,
        peak_vms=dict(sorted(stats.peak_vms.items())),
        core_hours_by_owner={o: _hours(s) for o, s in sorted(stats.busy_core_seconds.items())},
        cycles=run.cycles,
        simulated_hours=_hours(run.seconds),
        unservable_reasons=[Unservable(n, list(r)) for r, n in reasons],
    )


def report(trace: Trace, settings: Settings, runs: list[tuple[Outcome, Run]], swept: list[str]) -> Report:
    """The whole report of a trace's replays: each variant's figures and its run."""
    mean, sd = settings.boot_time
    return Report(
        trace={
            "source": trace.source,
            "format": trace.format,
            "jobs": len(trace.jobs),
            "skipped": dict(sorted(trace.skipped.items())),
        },
        seed=settings.seed,
        cycle_seconds=settings.cycle,
        boot_time={"mean": mean, "sd": sd},
        failure_rate=settings.failure_rate,
        variants=[o for o, _ in runs],
        swept=swept,
        downtimes=[shown(f"{d.id} ({d.scope}, {d.severity.value})", 200) for d in settings.downtimes],
        timelines=[run.timeline for _, run in runs],
    )


def _minutes(seconds: int | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _heading(result: Report, o: Outcome) -> str:
    if not result.swept:
        return shown(o.label, 60)
    return shown(" / ".join(shown_value(o.settings[k]) for k in result.swept), 60)


def table(result: Report) -> tuple[str | None, list[str], list[list[str]]]:
    """The title (the swept keys), columns (one per variant) and rows (one per figure) of
    the report's table."""
    title = " / ".join(shown(k, 80) for k in result.swept) or None
    columns = [""] + [_heading(result, o) for o in result.variants]
    figures: list[tuple[str, Any]] = [
        ("jobs", lambda o: f"{o.jobs}"),
        ("served", lambda o: f"{o.served}"),
        ("unservable", lambda o: f"{o.unservable}"),
        ("never started", lambda o: f"{o.stranded}"),
        *((f"wait p{q}", lambda o, q=q: _minutes(o.wait_seconds[f"p{q}"])) for q in PERCENTILES),
        ("wait max", lambda o: _minutes(o.wait_seconds["max"])),
        ("utilisation", lambda o: "-" if o.utilisation is None else f"{o.utilisation:.1%}"),
        ("VM-hours", lambda o: f"{o.vm_hours:,.1f}"),
        ("busy core-hours", lambda o: f"{o.busy_core_hours:,.1f}"),
        ("paid core-hours", lambda o: f"{o.provisioned_core_hours:,.1f}"),
        ("boots", lambda o: f"{o.boots}"),
        ("unused boots", lambda o: f"{o.boots_unused}"),
        ("refused boots", lambda o: f"{o.boot_failures}"),
    ]
    clouds = sorted({c for o in result.variants for c in o.peak_vms})
    figures += [(f"peak VMs {c}", lambda o, c=c: f"{o.peak_vms.get(c, 0)}") for c in clouds]
    owners = sorted({w for o in result.variants for w in o.core_hours_by_owner})
    figures += [
        (f"core-hours {shown(w, 40)}", lambda o, w=w: f"{o.core_hours_by_owner.get(w, 0):,.1f}")
        for w in owners
    ]
    return title, columns, [[name] + [show(o) for o in result.variants] for name, show in figures]
