"""``csctl status``: the whole service on one screen."""

from __future__ import annotations

import click

from csctl.cli.app import Application, json_option, pass_app


@click.command("status")
@click.option(
    "--watch",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Refresh in place every SECONDS until interrupted.",
)
@json_option
@pass_app
def command(app: Application, watch: float | None) -> None:
    """Show the whole service at a glance: each cloud's VMs, quota, backoff and downtime,
    the demand, and the last cycle.

    Built from one look at the pool and the clouds plus the state directory; it changes
    nothing and takes no lock.

    \b
    Examples:
      csctl status
      csctl status --watch 10
      csctl status --json | jq .last_cycle
    """
    from csctl.cli._status_render import render
    from csctl.engine.status import status

    if watch is None or app.console.json_output:
        report = status(app.services)
        if app.console.json_output:
            app.console.print_json(report.to_json())
        else:
            app.console.out.print(render(report))
        return
    _watch(app, watch)


def _watch(app: Application, seconds: float) -> None:
    """Redraw in place (rich Live) until Ctrl-C; each refresh is a fresh look."""
    import time

    from rich.live import Live

    from csctl.cli._status_render import render
    from csctl.engine.status import status

    with Live(render(status(app.services)), console=app.console.out, auto_refresh=False) as live:
        while True:
            time.sleep(seconds)
            live.update(render(status(app.services)), refresh=True)
