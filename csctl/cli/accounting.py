"""``csctl accounting``: APEL cloud records and a usage report, from the ledger ``run`` keeps."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.plan.text import shown

if TYPE_CHECKING:
    from csctl.plan.accounting.report import UsageRow

DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])
COLUMNS = ["provisioned core-h", "busy core-h", "utilisation", "VM-h", "VMs", "jobs", "CPU eff.", "no job"]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)  # dates are UTC, as APEL's months


@click.group("accounting")
def command() -> None:
    """Account for what csctl's VMs did: APEL cloud records and a usage report.

    `csctl run` keeps a ledger in the state directory (STATE_DIR/ledger.sqlite): every VM's
    life and the jobs it ran, read from the schedds' job history. See docs/accounting.md.

    \b
    Examples:
      csctl accounting apel --outgoing /var/spool/apel/outgoing/csctl
      csctl accounting report --since 2026-01-01 --by owner
    """


@command.command("apel")
@click.option("--outgoing", type=click.Path(path_type=Path), help="ssmsend's outgoing directory queue.")
@click.option("--dry-run", is_flag=True, help="Print the messages; write nothing.")
@click.option("--since", type=DATE, help="Write every record from this date's month on again (UTC).")
@pass_app
def apel(app: Application, outgoing: Path | None, dry_run: bool, since: datetime | None) -> None:
    """Write APEL cloud usage records (v0.4) for ssmsend to send: one per VM and month.

    Records whose usage changed since the last export are written (running VMs each
    time, with cumulative totals); --since writes a whole period again. The directory is
    a dirq queue: give ssmsend `path_type: dirq` and this path. Needs
    accounting.site_name.

    \b
    Examples:
      csctl accounting apel --outgoing /var/spool/apel/outgoing/csctl
      csctl accounting apel --dry-run --since 2026-01-01
    """
    from csctl.engine.accounting.apel import export_apel

    if outgoing is None and not dry_run:
        raise click.UsageError("--outgoing is required (or --dry-run)")
    result = export_apel(app.services, outgoing or Path("."), _utc(since), dry_run)
    for line in result.warnings:
        app.console.warn(line)
    click.echo("".join(result.messages) if dry_run else "", nl=False)
    what = f"{result.records} record(s) in {len(result.messages)} message(s)"
    app.console.info(f"dry run: {what}; nothing was written" if dry_run else f"{what} written to {outgoing}")


@command.command("report")
@click.option("--since", type=DATE, help="Start of the period (UTC). Default: the start of this month.")
@click.option("--until", type=DATE, help="End of the period (UTC, excluded). Default: now.")
@click.option(
    "--by",
    type=click.Choice(["owner", "group", "cloud", "type"]),
    default="cloud",
    show_default=True,
    help="One row per owner, accounting group, cloud or VM type.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout.")
@json_option
@pass_app
def report(app: Application, since: datetime | None, until: datetime | None, by: str, as_csv: bool) -> None:
    """Usage over a period per owner, accounting group, cloud or VM type: provisioned and
    busy core-hours, utilisation, VM-hours, jobs, CPU efficiency, VMs that never ran a job.

    Grouped by owner or group, each VM's provisioned time is shared among the owners of
    the jobs it ran in the period; VMs that ran none form the row "(no jobs)".

    \b
    Examples:
      csctl accounting report
      csctl accounting report --since 2026-01-01 --until 2026-04-01 --by group --csv
    """
    from csctl.engine.accounting.report import usage_report

    now = app.services.now()
    start = _utc(since) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    result = usage_report(app.services, start, _utc(until) or now, by)
    for line in result.warnings:
        app.console.warn(line)
    rows = [*result.rows, result.total]
    if app.console.json_output:
        app.console.print_json(
            {
                "by": by,
                "since": start.isoformat(),
                "until": result.until.isoformat(),
                "rows": [_data(r) for r in rows],
            }
        )
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow([by, *COLUMNS])
        writer.writerows([_shown(r.key), *_numbers(r)] for r in rows)
    else:
        from rich.markup import escape

        table = [(escape(_shown(r.key)), *_numbers(r)) for r in rows]
        app.console.table(
            f"usage {start:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC", [by, *COLUMNS], table
        )


def _shown(key: str) -> str:
    return shown(key, limit=64)  # an owner name is the submitter's own words


def _numbers(row: UsageRow) -> list[object]:
    ratio = [None if v is None else f"{v:.1%}" for v in (row.utilisation, row.cpu_efficiency)]
    hours = [round(row.provisioned_core_hours, 2), round(row.busy_core_hours, 2)]
    return [*hours, ratio[0], round(row.vm_hours, 2), row.vms, row.jobs, ratio[1], row.never_ran_a_job]


def _data(row: UsageRow) -> dict[str, object]:
    return {
        "key": row.key,
        "provisioned_core_hours": row.provisioned_core_hours,
        "busy_core_hours": row.busy_core_hours,
        "utilisation": row.utilisation,
        "vm_hours": row.vm_hours,
        "vms": row.vms,
        "jobs": row.jobs,
        "cpu_seconds": row.cpu_seconds,
        "cpu_efficiency": row.cpu_efficiency,
        "never_ran_a_job": row.never_ran_a_job,
    }
