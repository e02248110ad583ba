"""``csctl retire``: drain VMs no job needs, then terminate them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode


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
    from csctl.core.demand import compute_demand
    from csctl.core.lifecycle import execute_retire
    from csctl.core.reconcile import reconcile
    from csctl.core.retire import plan_retire
    from csctl.core.world import supply, take_snapshot

    config, now = app.config, datetime.now(UTC)
    pool, clouds = app.pool(), app.clouds()
    snapshot = take_snapshot(pool, clouds, config)
    demand = compute_demand(snapshot.groups, supply(snapshot, config), config)
    report = reconcile(snapshot.instances, snapshot.slots, config, now, snapshot.failed_clouds)
    plan = plan_retire(report, demand, config, now, force=force)
    for error in snapshot.errors:
        app.console.warn(error)
    if dry_run:
        _show_plan(app, plan)
        return
    done = execute_retire(plan, report, pool, clouds, config, app.signing_key("command VMs"), now)
    if app.console.json_output:
        app.console.print_json({"plan": asdict(plan), "result": asdict(done)})
    else:
        _show_plan(app, plan)
        for vm_id, jobs in done.killed_jobs.items():
            app.console.warn(f"{vm_id}: terminated with running job(s) {', '.join(jobs)}")
        for error in done.errors:
            app.console.warn(error)
        app.console.result(
            f"{len(done.drained)} drained, {len(done.terminated)} terminated, "
            f"{len(done.draining)} still finishing jobs"
        )
    if done.errors or snapshot.errors:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _show_plan(app: Application, plan) -> None:  # type: ignore[no-untyped-def]
    if app.console.json_output:
        app.console.print_json(asdict(plan))
        return
    rows = [(r.csctl_id, r.cloud, r.vm_type, r.action.value, r.reason) for r in plan.retirements]
    if rows:
        app.console.table("retire plan", ["VM", "cloud", "type", "action", "reason"], rows)
    else:
        app.console.result("nothing to retire")
