"""``csctl simulate``: replay a workload trace through csctl's own decisions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app

if TYPE_CHECKING:
    from csctl.engine.simulate.report import Report

MAX_REASONS = 10


def _boot_time(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    mean, _, sd = value.partition(",")
    try:
        parsed = (float(mean), float(sd) if sd else 0.0)
    except ValueError:
        raise click.BadParameter(f"expected MEAN[,SD] in seconds, got {value!r}") from None
    if not all(0 <= v <= 86400 for v in parsed):
        raise click.BadParameter(f"expected seconds between 0 and 86400, got {value!r}")
    return parsed


@click.command("simulate")
@click.option(
    "--trace",
    "trace_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Workload trace: a Standard Workload Format log or `condor_history -json` output (.gz read too).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["swf", "history"]), help="Trace format (default: guessed from it)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the boot delays and failures.")
@click.option(
    "--cycle",
    type=click.IntRange(1, 86400),
    default=300,
    show_default=True,
    help="Seconds between two csctl cycles (cron's interval).",
)
@click.option(
    "--boot-time",
    metavar="MEAN[,SD]",
    callback=_boot_time,
    help="Seconds from a boot call to the VM's startd in the pool, normally distributed [default: 300,60].",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of boot calls a cloud refuses (the cloud is then backed off).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE[,VALUE...]",
    help="Override a configuration key (dotted); a comma list makes variants, replayed side by side.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also draw idle jobs, running jobs and paid cores over time into this PNG (needs matplotlib).",
)
@click.option(
    "--downtimes",
    "downtimes_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Replay under the downtimes of a csctl downtimes file (as STATE_DIR/downtimes.json), trace clock.",
)
@json_option
@pass_app
def command(
    app: Application,
    trace_path: Path,
    fmt: str | None,
    seed: int,
    cycle: int,
    boot_time: tuple[float, float] | None,
    failure_rate: float,
    sets: tuple[str, ...],
    plot_path: Path | None,
    downtimes_path: Path | None,
) -> None:
    """Replay a workload through csctl's own decisions, to tune policy before spending cloud money.

    Every cycle calls the planners `csctl run` calls (demand, placement, retirement,
    backoff) on a simulated pool and simulated clouds: VMs join after a drawn boot
    delay, jobs run for their run time. The same trace, configuration and seed give the
    same report. See docs/simulate.md.

    \b
    Examples:
      csctl simulate --trace lublin_256.swf.gz
      csctl simulate --trace history.json --set vm_types.big.keep_alive_minutes=0,10,30
      csctl simulate --trace jobs.swf --set policy.max_new_vms_per_cycle=5,20 --json
      csctl simulate --trace bursty.swf --set vm_types.std.keep_alive_minutes=0,30 --plot waits.png
    """
    from csctl.engine.simulate import simulate
    from csctl.engine.simulate.runner import DEFAULT_BOOT_TIME, Settings

    settings = Settings(seed, cycle, boot_time or DEFAULT_BOOT_TIME, failure_rate)
    result = simulate(app.config, trace_path, settings, sets, fmt, plot_path, downtimes_path)
    if app.console.json_output:
        app.console.print_json(result.as_json())
        return
    _render(app, result)


def _render(app: Application, result: Report) -> None:
    console = app.console
    trace = result.trace
    for why, count in trace["skipped"].items():
        console.warn(f"{count} job(s) of the trace skipped: {why}")
    from csctl.engine.simulate.report import table

    title, columns, rows = table(result)
    console.table(title, columns, rows)
    first = result.variants[0]
    for item in first.unservable_reasons[:MAX_REASONS]:
        console.result(f"{item.jobs} unservable job(s): {'; '.join(item.reasons)}")
    more = len(first.unservable_reasons) - MAX_REASONS
    if more > 0:
        console.result(f"... and {more} more reason(s) (see --json)")
