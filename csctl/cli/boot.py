"""``csctl boot``: boot the VMs the queue needs."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode

if TYPE_CHECKING:
    from csctl.engine.boot import BootReport
    from csctl.plan.placement import BootPlan


@click.command("boot")
@click.option("--dry-run", is_flag=True, help="Print the boot plan and stop; nothing is booted.")
@click.option(
    "--demand",
    "demand_file",
    type=click.File("r"),
    help="Read `csctl demand --json` output from this file (- for stdin) instead of computing it.",
)
@json_option
@pass_app
def command(app: Application, dry_run: bool, demand_file: IO[str] | None) -> None:
    """Boot VMs for the idle jobs: one request per cloud and VM type, clouds in parallel.

    The plan honours TargetClouds, each type's image and flavor per cloud, each
    cloud's limits (counting VMs already there) and the quota its API reports, cloud
    priority, failure backoff and policy.max_new_vms_per_cycle. When not all fits, the
    new VMs are split among owners (or accounting groups) by policy.fair_share; the
    dry run shows what each owner gets and why. A cloud that fails, or cannot be
    listed, does not stop the others (exit 4, also for --dry-run); quota errors make
    csctl ask that cloud for fewer.

    \b
    Examples:
      csctl boot --dry-run
      csctl demand --json | csctl boot --demand -
    """
    from csctl.engine.boot import boot

    result = boot(app.services, demand_file, dry_run=dry_run)
    for line in result.warnings + result.errors:
        app.console.warn(line)
    if result.report is None:
        _show_plan(app, result.plan)
    else:
        _show_report(app, result.plan, result.report)
    if result.partial:  # a dry run that could not see every cloud says so, as a boot would
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _show_plan(app: Application, plan: BootPlan) -> None:
    from dataclasses import asdict

    if app.console.json_output:
        app.console.print_json({**asdict(plan), "total": plan.total})
        return
    rows = [(i.cloud, i.vm_type, i.count, i.image, i.flavor, i.max_price) for i in plan.items]
    if rows:
        app.console.table("boot plan", ["cloud", "VM type", "VMs", "image", "flavor", "spot bid"], rows)
    for u in plan.unplaced:
        app.console.result(f"not booted: {u.count} {u.vm_type}: {u.reason}")
    _show_owners(app, plan)
    app.console.result(f"{plan.total} VMs would be booted")


def _show_owners(app: Application, plan: BootPlan) -> None:
    from csctl.plan.text import shown  # owner names come from the jobs

    rows = [(shown(o.owner), o.needed, o.granted, shown(o.why, 300)) for o in plan.owners]
    if rows:
        title = f"fair share ({plan.fair_share})"
        app.console.table(title, ["owner", "needs", "gets", "why"], rows)


def _show_report(app: Application, plan: BootPlan, report: BootReport) -> None:
    from dataclasses import asdict

    if app.console.json_output:
        app.console.print_json({"plan": asdict(plan), "outcomes": [asdict(o) for o in report.outcomes]})
        return
    rows = [(o.cloud, o.vm_type, o.asked, len(o.started), o.error or "ok") for o in report.outcomes]
    if rows:
        app.console.table(None, ["cloud", "VM type", "asked", "started", "result"], rows)
    for u in plan.unplaced:
        app.console.result(f"not booted: {u.count} {u.vm_type}: {u.reason}")
    _show_owners(app, plan)
    app.console.result(f"{report.started} VMs booted")
