"""``csctl simulate --plot``: idle jobs, running jobs and paid cores over time, as a PNG.

matplotlib is optional (``pip install 'csctl[plot]'``) and imported only here. The figure
is drawn with matplotlib's object API on the Agg canvas: no pyplot, so no GUI backend and
no global figure state. Every number comes from the replay's samples, one per cycle, so
the same replay draws the same picture.
"""

from __future__ import annotations

import io
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from csctl.engine.simulate.report import Report
from csctl.engine.simulate.runner import Sample
from csctl.engine.state import write_atomically
from csctl.errors import InputError
from csctl.plan.text import shown

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_PLOTTED_VARIANTS = 16  # one panel each; more would be unreadable on one page
PANEL_HEIGHT = 2.4  # inches
HOUR = 3600


def check_plot(variants: int, path: Path) -> None:
    """Raise InputError before a replay whose picture could not be drawn: matplotlib
    missing, more variants than fit on one page, or no directory to write it in."""
    if not path.parent.is_dir():  # an output file is not a reason to make directories
        raise InputError(f"--plot: cannot write {path}: {path.parent} is not a directory")
    if find_spec("matplotlib") is None:
        raise InputError("--plot needs matplotlib, which is not installed", hint="pip install 'csctl[plot]'")
    if variants > MAX_PLOTTED_VARIANTS:
        raise InputError(
            f"--plot draws at most {MAX_PLOTTED_VARIANTS} variants; --set makes {variants}",
            hint="sweep fewer values, or drop --plot and read the table",
        )


def _label(text: str) -> str:
    # matplotlib reads $...$ as mathematics: a value from --set or a file name is text
    return shown(text, 80).replace("$", r"\$")


def _panel(axes: Axes, timeline: list[Sample], title: str) -> None:
    hours = [s.t / HOUR for s in timeline]
    for values, name in (
        ([s.idle for s in timeline], "idle jobs"),
        ([s.running for s in timeline], "running jobs"),
        ([s.cores for s in timeline], "paid cores"),
    ):
        axes.step(hours, values, where="post", label=name, linewidth=1)
    axes.set_title(title, fontsize=9, loc="left")
    axes.grid(True, alpha=0.3)
    axes.set_ylim(bottom=0)


def render_png(result: Report) -> bytes:
    """The report's timelines as PNG bytes: one panel per variant, hours on a shared axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = len(result.variants)
    figure = Figure(figsize=(10, PANEL_HEIGHT * panels + 0.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(panels, 1, sharex=True, squeeze=False)
    for row, (variant, timeline) in enumerate(zip(result.variants, result.timelines, strict=True)):
        _panel(grid[row][0], timeline, _label(variant.label))
    grid[0][0].legend(loc="upper right", fontsize=8)
    grid[-1][0].set_xlabel("hours since the first submit")
    figure.suptitle(_label(f"csctl simulate: {result.trace['source']}"), fontsize=10)
    out = io.BytesIO()
    # no Software/date metadata: the same replay gives the same bytes
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def plot(result: Report, path: Path) -> None:
    """Draw the report's timelines into ``path`` (PNG), written atomically."""
    png = render_png(result)
    try:
        write_atomically(path, png, mode=0o644)
    except OSError as exc:
        raise InputError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
