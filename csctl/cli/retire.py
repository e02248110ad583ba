"""``csctl retire``: drain VMs no job needs, then terminate them."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode

if TYPE_CHECKING:
    from csctl.plan.retire import RetirePlan


@click.command("retire")
@click.option(
    "--dry-run", is_flag=True, help="Print what would be drained or terminated, and why; do nothing."
)
@click.option(
    "--force",
    is_flag=True,
    help="Also terminate VMs still running jobs (each killed job is logged). Never needed by cron.",
)
@json_option
@pass_app
def command(app: Application, dry_run: bool, force: bool) -> None:
    """Retire VMs gracefully: drain (no new jobs; running jobs finish), then terminate once a
    fresh look at the pool shows no claimed slot.

    A VM is retired when it is idle past its keep-alive and no idle job needs its type on
    its cloud, when it passed policy.max_lifetime_hours, or when its cloud is disabled
    (enabled = false empties a cloud: use it to declare downtime). Stopped VMs are
    terminated. A VM running a job is never terminated without --force.

    \b
    Examples:
      csctl retire --dry-run
      csctl retire
    """
    from csctl.engine.retire import retire

    result = retire(app.services, dry_run=dry_run, force=force)
    for line in result.warnings + result.errors:
        app.console.warn(line)
    for reason in result.plan.held:
        app.console.warn(f"nothing retired: {reason}")
    done = result.done
    if done is None:
        _show_plan(app, result.plan)
        return
    if app.console.json_output:
        app.console.print_json({"plan": asdict(result.plan), "result": asdict(done)})
    else:
        _show_plan(app, result.plan)
        for vm_id, jobs in done.killed_jobs.items():
            app.console.warn(f"{vm_id}: terminated with running job(s) {', '.join(jobs)}")
        for error in done.errors:
            app.console.warn(error)
        app.console.result(
            f"{len(done.drained)} drained, {len(done.terminated)} terminated, "
            f"{len(done.draining)} still finishing jobs"
        )
    if result.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _show_plan(app: Application, plan: RetirePlan) -> None:
    if app.console.json_output:
        app.console.print_json(asdict(plan))
        return
    rows = [(r.csctl_id, r.cloud, r.vm_type, r.action.value, r.reason) for r in plan.retirements]
    if rows:
        app.console.table("retire plan", ["VM", "cloud", "type", "action", "reason"], rows)
    else:
        app.console.result("nothing to retire")
