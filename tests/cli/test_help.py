"""`csctl --help` lists the commands from a table, without importing them."""

import subprocess
import sys

import click
import pytest

from csctl.cli import SUBCOMMANDS, SUMMARIES, cli


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_summary_is_the_first_sentence_of_the_commands_help(name):
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert SUMMARIES[name] == command.get_short_help_str(limit=10**6)


def test_the_listing_matches_what_click_would_print_from_the_commands(csctl):
    class Eager(click.Group):
        pass

    ctx = click.Context(cli)
    eager = Eager("csctl", commands={name: cli.get_command(ctx, name) for name in SUBCOMMANDS})
    for width in (60, 80, 200):
        lazy_text, eager_text = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(ctx, lazy_text)
        eager.format_commands(click.Context(eager), eager_text)
        assert lazy_text.getvalue() == eager_text.getvalue()
    assert "delegate-proxy  Make an RFC 3820 proxy certificate" in csctl("--help").stdout


def test_help_imports_no_subcommand_and_no_rich():
    code = (
        "import sys; from csctl.cli import cli\n"
        "try: cli(['--help'], prog_name='csctl')\n"
        "except SystemExit: pass\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules "
        "if m.startswith(('csctl.cli.', 'rich', 'cryptography', 'csctl.proxy'))"
        " and m not in ('csctl.cli.app', 'csctl.cli.commands'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "LOADED="
