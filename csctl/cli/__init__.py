"""csctl's command line: a root group and one module per subcommand."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from csctl import __version__
from csctl.cli.app import Application
from csctl.cli.commands import SUBCOMMANDS, SUMMARIES
from csctl.errors import CsctlError, ExitCode

DEFAULT_CONFIG = "/etc/csctl/csctl.toml"


class CsctlGroup(click.Group):
    """Loads subcommand modules on demand and turns CsctlErrors into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module = __import__(f"csctl.cli.{SUBCOMMANDS[name]}", fromlist=["command"])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from SUMMARIES: no subcommand module is imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)  # as click.Group lays it out
        rows = [(name, click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CsctlError as exc:
            app = ctx.find_object(Application)
            if app is not None and app.debug:  # the traceback, then the same line and exit code
                import traceback

                traceback.print_exc()
            if app is not None:
                console = app.console
            else:
                from csctl.console import Console

                console = Console()
            problems = getattr(exc, "problems", None)
            for line in problems or [exc.message]:
                console.error(line)
            if exc.hint:
                console.err.print(f"hint: {exc.hint}", markup=False)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=CsctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="CSCTL_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    show_envvar=True,
    help="Configuration file.",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--debug", is_flag=True, envvar="CSCTL_DEBUG", help="Show tracebacks and debug logs.")
@click.version_option(__version__, "--version", prog_name="csctl")
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path, verbose: int, quiet: bool, json_output: bool, debug: bool
) -> None:
    """csctl: boot cloud VMs for idle HTCondor jobs, and retire them when done.

    Each subcommand rebuilds its view of the world from the pool and the clouds;
    nothing is kept between runs but a small state directory.

    \b
    Example:
      csctl --config /etc/csctl/csctl.toml demand --explain
    """
    import logging  # here, not at the top: `csctl --help` never gets this far

    from csctl import logredact
    from csctl.console import Console

    verbosity = -1 if quiet else verbose
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logredact.install()  # --debug logs whole SDK requests: user data and tokens must not reach them
    console = Console(verbosity=verbosity, json_output=json_output)
    ctx.obj = Application(config_path=config_path, console=console, debug=debug)


def main() -> None:
    """Entry point of the ``csctl`` script."""
    try:
        cli(prog_name="csctl")
    finally:
        # The process ends next. Its objects (pydantic's validators above all) are left to the
        # operating system, not to the interpreter's garbage collections at exit: those took
        # 0.1 s of a 1 s `csctl demand`. atexit handlers still run and stdout and stderr are
        # still flushed; only objects in reference cycles skip their finalizers, which Python
        # never promises to run at exit anyway. (Not in `cli`, which tests run in-process.)
        import gc

        gc.freeze()
