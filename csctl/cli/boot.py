"""``csctl boot``: boot the VMs the queue needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode, InputError


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
    cloud's limits (counting VMs already there), cloud priority, failure backoff and
    policy.max_new_vms_per_cycle. A cloud that fails does not stop the others
    (exit 4); quota errors make csctl ask that cloud for fewer.

    \b
    Examples:
      csctl boot --dry-run
      csctl demand --json | csctl boot --demand -
    """
    from csctl.core.boot import execute_boot
    from csctl.core.demand import compute_demand, demand_from_json
    from csctl.core.placement import plan_boot
    from csctl.core.state import load_backoff, save_backoff
    from csctl.core.world import supply, take_snapshot

    config, now = app.config, datetime.now(UTC)
    clouds = app.clouds()
    # given a demand, only the clouds' lists are needed (for their limits)
    snapshot = take_snapshot(app.pool() if demand_file is None else None, clouds, config)
    if demand_file is not None:
        try:
            demand = demand_from_json(json.load(demand_file))
        except ValueError as exc:
            raise InputError(f"{demand_file.name}: {exc}") from None
    else:
        demand = compute_demand(snapshot.groups, supply(snapshot, config), config)
    backoff = load_backoff(config.state_dir)
    plan = plan_boot(demand, snapshot.instances, config, backoff.active(now), now, snapshot.failed_clouds)
    for error in snapshot.errors:
        app.console.warn(error)
    if dry_run:
        _show_plan(app, plan)
        return
    key = app.signing_key("boot VMs")
    report = execute_boot(plan, clouds, config, key, now, backoff)
    save_backoff(config.state_dir, backoff)
    _show_report(app, plan, report)
    if report.partial or snapshot.errors:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _show_plan(app: Application, plan) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    if app.console.json_output:
        app.console.print_json({**asdict(plan), "total": plan.total})
        return
    rows = [(i.cloud, i.vm_type, i.count, i.image, i.flavor, i.max_price) for i in plan.items]
    if rows:
        app.console.table("boot plan", ["cloud", "VM type", "VMs", "image", "flavor", "spot bid"], rows)
    for u in plan.unplaced:
        app.console.result(f"not booted: {u.count} {u.vm_type}: {u.reason}")
    app.console.result(f"{plan.total} VMs would be booted")


def _show_report(app: Application, plan, report) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    if app.console.json_output:
        app.console.print_json({"plan": asdict(plan), "outcomes": [asdict(o) for o in report.outcomes]})
        return
    rows = [(o.cloud, o.vm_type, o.asked, len(o.started), o.error or "ok") for o in report.outcomes]
    if rows:
        app.console.table(None, ["cloud", "VM type", "asked", "started", "result"], rows)
    for u in plan.unplaced:
        app.console.result(f"not booted: {u.count} {u.vm_type}: {u.reason}")
    app.console.result(f"{report.started} VMs booted")
