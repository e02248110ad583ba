"""``csctl run``: one scheduling cycle, for cron."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode

if TYPE_CHECKING:
    from csctl.engine.cycle import CyclePlan, CycleResult


@click.command("run")
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="CSCTL_METRICS_FILE",
    show_envvar=True,
    help="Also write the cycle's numbers as a Prometheus textfile here.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Plan the whole cycle and print it; nothing is booted, drained or written.",
)
@json_option
@pass_app
def command(app: Application, metrics_file: Path | None, dry_run: bool) -> None:
    """Run one cycle: join-check --fix, demand, boot, retire, on one look at the pool and
    one list call per cloud.

    Two csctl commands that act never overlap: a second `csctl run` (or boot, retire,
    join-check --fix) exits at once (code 6) while the first holds STATE_DIR/run.lock. A
    cycle killed half-way leaves nothing the next one cannot find and finish. Exit 0 when
    all went well, 4 when some cloud or schedd failed (the others were still served).
    With -q a cycle that went well prints nothing; -v adds each step's details.

    \b
    Examples:
      csctl run --dry-run
      */5 * * * * csctl -q run --metrics-file /var/lib/node_exporter/csctl.prom
    """
    from csctl.engine.cycle import dry_run as plan_only
    from csctl.engine.cycle import run

    if dry_run:
        _show_plan(app, plan_only(app.services))
        return
    result = run(app.services, metrics_file)
    if app.console.json_output:
        app.console.print_json(
            {
                **asdict(result.report),
                "join_fix": asdict(result.fixed),
                "boot": asdict(result.booted),
                "retire": asdict(result.retired),
            }
        )
    else:
        _show_result(app, result)
    if result.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _show_result(app: Application, result: CycleResult) -> None:
    console, report = app.console, result.report
    for warning in report.warnings:
        console.warn(warning)
    for reason in report.held:
        console.warn(f"nothing terminated or drained this cycle: {reason}")
    for line in report.downtime:
        console.warn(line)
    for error in report.errors:  # with -q only errors speak, so cron mails only then
        if console.verbosity < 0:
            console.error(error)
        else:
            console.warn(error)
    for o in result.booted.outcomes:
        console.detail(f"boot {o.cloud} {o.vm_type}: asked {o.asked}, started {len(o.started)}")
    for vm_id in result.fixed.terminated:
        console.detail(f"terminated {vm_id} (never joined or broken)")
    for vm_id in result.retired.drained:
        console.detail(f"drained {vm_id}")
    for vm_id in result.retired.terminated:
        console.detail(f"terminated {vm_id}")
    console.detail("phases: " + ", ".join(f"{p} {s:.2f} s" for p, s in report.phases.items()))
    if console.verbosity >= 0:
        console.result(report.summary())


def _show_plan(app: Application, plan: CyclePlan) -> None:
    console = app.console
    if console.json_output:
        console.print_json({**asdict(plan), "summary": plan.summary()})
        return
    for line in plan.warnings + plan.errors:
        console.warn(line)
    for reason in plan.retire.held:
        console.warn(f"nothing would be terminated or drained: {reason}")
    for line in plan.downtime:
        console.warn(line)
    for vm_id in plan.terminate_failed_joins:
        console.result(f"would terminate {vm_id} (never joined or broken)")
    for i in plan.boot.items:
        console.result(f"would boot {i.count} {i.vm_type} on {i.cloud}")
    for u in plan.boot.unplaced:
        console.result(f"would not boot {u.count} {u.vm_type}: {u.reason}")
    for r in plan.retire.retirements:
        console.result(f"would {r.action.value} {r.csctl_id}: {r.reason}")
    console.result(plan.summary())
