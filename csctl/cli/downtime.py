"""``csctl downtime``: declare, list, remove and import maintenance windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from csctl.cli.app import Application, json_option, pass_app


@click.group("downtime")
def command() -> None:
    """Declare downtime: keep csctl off a cloud, an image, a VM type, or the whole service.

    During an outage nothing boots in its scope and boot plans go to the other allowed
    clouds; from policy.downtime_drain_ahead_minutes before it, the VMs in its scope are
    drained so that they are empty when it starts. A warning only reports. Declared
    downtimes are kept in the state directory and published to the collector
    (MyType == "CsctlDowntime").

    \b
    Examples:
      csctl downtime add --cloud Hermes --start 2026-12-01T08:00Z --duration 4h --reason "kernel update"
      csctl downtime add --type pandacernvm --schedule "0 22 * * 6" --duration 8h
      csctl downtime list
    """


@command.command("add")
@click.option("--cloud", help="The cloud in downtime.")
@click.option("--image", help="Only this image on --cloud.")
@click.option("--type", "vm_type", help="A VM type, on every cloud.")
@click.option("--service", is_flag=True, help="csctl as a whole: run boots and retires nothing.")
@click.option("--start", help="ISO 8601 time, UTC unless it names a zone (default: now).")
@click.option("--end", help="ISO 8601 time the downtime ends.")
@click.option("--duration", help="Length instead of --end, e.g. 90m, 8h, 1d12h.")
@click.option("--schedule", help="A recurring window: a cron schedule (UTC), with --duration.")
@click.option("--reason", default="", help="Why; shown to operators and users.")
@click.option(
    "--severity",
    type=click.Choice(["outage", "warning"]),
    default="outage",
    show_default=True,
    help="An outage keeps csctl out; a warning is only reported.",
)
@click.option(
    "--at-start",
    type=click.Choice(["drain", "terminate"]),
    default="drain",
    show_default=True,
    help="What happens to VMs still in the scope when the outage starts.",
)
@json_option
@pass_app
def add(app: Application, **options: Any) -> None:
    """Declare a downtime.

    \b
    Example:
      csctl downtime add --cloud Hermes --start 2026-12-01T08:00Z --end 2026-12-01T12:00Z
    """
    from csctl.cli._downtime_render import show
    from csctl.engine.downtime import add_downtime
    from csctl.plan.downtime_rules import Request

    show(app, add_downtime(app.services, Request(**options)))


@command.command("list")
@json_option
@pass_app
def list_(app: Application) -> None:
    """List every declared downtime: its id, whether it is active, and what it affects.

    \b
    Example:
      csctl downtime list --json
    """
    from csctl.cli._downtime_render import show_list
    from csctl.engine.downtime import list_downtimes

    show_list(app, *list_downtimes(app.services))


@command.command("remove")
@click.argument("downtime_id")
@json_option
@pass_app
def remove(app: Application, downtime_id: str) -> None:
    """Remove a declared downtime (its collector ad is withdrawn).

    \b
    Example:
      csctl downtime remove 3
    """
    from csctl.cli._downtime_render import show
    from csctl.engine.downtime import remove_downtime

    show(app, remove_downtime(app.services, downtime_id))


@command.command("import")
@click.option(
    "--gocdb",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="A GOCDB get_downtime XML export.",
)
@json_option
@pass_app
def import_(app: Application, gocdb: Path) -> None:
    """Import a GOCDB get_downtime XML export; hostnames map to clouds through each cloud's
    hostnames (or its endpoint_url).

    \b
    Example:
      curl -s 'https://goc.egi.eu/gocdbpi/public/?method=get_downtime&topentity=SITE' > dt.xml
      csctl downtime import --gocdb dt.xml
    """
    from csctl.cli._downtime_render import show
    from csctl.engine.downtime import import_gocdb

    show(app, import_gocdb(app.services, gocdb))
