"""``csctl simulate``: replay a workload through csctl's own decisions.

The simulator is another engine over the same planners: ``world`` stands in for the
clouds and the pool, ``runner`` calls the planners every cycle, ``report`` sums it up.
No decision is made here that ``csctl run`` would not make the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from csctl.config import Config
from csctl.engine.downtime import read_downtimes_file
from csctl.engine.simulate.plot import check_plot, plot
from csctl.engine.simulate.report import Report, outcome, report
from csctl.engine.simulate.runner import Settings, replay
from csctl.engine.simulate.traces import Trace, read_trace
from csctl.engine.simulate.variants import swept, variants
from csctl.pool.htcondor import load_classad_functions


def simulate(
    config: Config,
    trace: Trace | Path,
    settings: Settings | None = None,
    sets: Sequence[str] = (),
    fmt: str | None = None,
    plot_path: Path | None = None,
    downtimes_path: Path | None = None,
) -> Report:
    """Replay ``trace`` (or the trace file, in ``fmt`` or guessed) under ``config`` and
    each variant ``sets`` makes of it (``KEY=V1,V2``), in the simulated world; with
    ``plot_path``, also draw the variants' timelines there (PNG); with ``downtimes_path``,
    under the downtimes of that csctl downtimes file, on the trace's clock."""
    settings = settings or Settings()
    if downtimes_path is not None:
        settings = replace(settings, downtimes=tuple(read_downtimes_file(downtimes_path)))
    configs = variants(config, sets)  # every variant is checked before any replay
    if plot_path is not None:
        check_plot(len(configs), plot_path)
    load_classad_functions()  # jobs' Requirements call HTCondor's functions, as in the pool
    if isinstance(trace, Path):
        trace = read_trace(trace, fmt)
    runs = [(label, chosen, replay(cfg, trace, settings)) for label, chosen, cfg in configs]
    result = report(trace, settings, [(outcome(*r), r[2]) for r in runs], swept(sets))
    if plot_path is not None:
        plot(result, plot_path)
    return result
