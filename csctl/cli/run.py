"""``csctl run``: one scheduling cycle, for cron."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode


@click.command("run")
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="CSCTL_METRICS_FILE",
    show_envvar=True,
    help="Also write the cycle's numbers as a Prometheus textfile here.",
)
@json_option
@pass_app
def command(app: Application, metrics_file: Path | None) -> None:
    """Run one cycle: join-check --fix, demand, boot, retire, on one look at the pool and
    one list call per cloud.

    Two cycles never overlap: a second `csctl run` exits at once (code 6) while the first
    holds STATE_DIR/run.lock. A cycle killed half-way leaves nothing the next one cannot
    find and finish. Exit 0 when all went well, 4 when some cloud or schedd failed (the
    others were still served).

    \b
    Examples:
      csctl run
      */5 * * * * csctl -q run --metrics-file /var/lib/node_exporter/csctl.prom
    """
    from csctl.engine.cycle import run

    result = run(app.services, metrics_file)
    report = result.report
    if app.console.json_output:
        app.console.print_json(
            {
                **asdict(report),
                "join_fix": asdict(result.fixed),
                "boot": asdict(result.booted),
                "retire": asdict(result.retired),
            }
        )
    else:
        for error in report.errors:
            app.console.warn(error)
        app.console.result(report.summary())
    if result.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))
