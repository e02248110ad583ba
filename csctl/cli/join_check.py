"""``csctl join-check``: which VMs joined the pool, which never did, what is orphaned."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode

if TYPE_CHECKING:
    from csctl.engine.joincheck import FixReport
    from csctl.plan.reconcile import JoinReport


@click.command("join-check")
@click.option(
    "--fix", is_flag=True, help="Terminate never-joined and errored VMs, saving their console first."
)
@click.option("--dry-run", is_flag=True, help="With --fix: name the VMs it would terminate; do nothing.")
@json_option
@pass_app
def command(app: Application, fix: bool, dry_run: bool) -> None:
    """Join every cloud's csctl VMs with the pool's startds on the csctl id, and classify them:
    booting, idle, busy, draining, never-joined (running past policy.join_timeout_minutes
    without a startd), error (the cloud says so), stopped, lost (a startd no cloud lists).

    With --fix, never-joined and errored VMs are terminated; each console is saved under
    STATE_DIR/console/ and the failure counts against that image on that cloud in the
    boot backoff.

    \b
    Examples:
      csctl join-check
      csctl join-check --fix --dry-run
      csctl join-check --fix --json
    """
    from csctl.engine.joincheck import join_check

    result = join_check(app.services, fix=fix, dry_run=dry_run)
    for warning in result.warnings:
        app.console.warn(warning)
    if fix:
        for reason in result.held:
            app.console.warn(f"--fix terminated nothing: {reason}")
    _render(app, result.report, result.fixed, result.errors, result.would_terminate)
    if dry_run and fix and not app.console.json_output:
        for vm_id in result.would_terminate:
            app.console.result(f"would terminate {vm_id}")
        app.console.result(
            f"dry run: {len(result.would_terminate)} VM(s) would be terminated; nothing was done"
        )
    if result.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _render(
    app: Application,
    report: JoinReport,
    fixed: FixReport | None,
    errors: list[str],
    would_terminate: list[str],
) -> None:
    console = app.console
    if console.json_output:
        vms = [
            {
                "csctl_id": v.csctl_id,
                "cloud": v.cloud,
                "vm_type": v.vm_type,
                "status": v.status.value,
                "age_minutes": v.age_minutes,
                "jobs": v.jobs,
                "cloud_state": v.instance.state.value if v.instance else None,
                "fault": v.instance.fault if v.instance else None,
            }
            for v in report.vms
        ]
        console.print_json(
            {
                "schema": report.schema,
                "vms": vms,
                "errors": errors,
                "unlisted_clouds": report.unlisted_clouds,
                "fixed": asdict(fixed) if fixed else None,
                "would_terminate": would_terminate,
            }
        )
        return
    for error in errors:
        console.warn(error)
    rows = [
        (
            v.csctl_id,
            v.cloud,
            v.vm_type,
            v.status.value,
            v.age_minutes,
            v.jobs,
            (v.instance.fault or "") if v.instance else "no instance",
        )
        for v in report.vms
    ]
    if rows:
        console.table(None, ["VM", "cloud", "type", "status", "age min", "jobs", "note"], rows)
    counts: dict[str, int] = {}
    for v in report.vms:
        counts[v.status.value] = counts.get(v.status.value, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no csctl VMs"
    console.result(f"{len(report.vms)} VMs: {summary}")
    if fixed:
        for vm_id in fixed.terminated:
            console.result(f"terminated {vm_id} (console saved to {fixed.consoles.get(vm_id)})")
        for error in fixed.errors:
            console.warn(error)
