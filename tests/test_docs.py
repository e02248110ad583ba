"""Help is part of the product: every command has a short help and an example."""

import subprocess
import sys

import click
import pytest

from csctl.cli import SUBCOMMANDS, cli


def all_commands():
    ctx = click.Context(cli)
    stack = [(name, cli.get_command(ctx, name)) for name in cli.list_commands(ctx)]
    while stack:
        name, command = stack.pop()
        yield name, command
        if isinstance(command, click.Group):
            stack += [(f"{name} {sub}", command.commands[sub]) for sub in command.commands]


@pytest.mark.parametrize(("name", "command"), list(all_commands()))
def test_every_command_has_help_and_an_example(name, command):
    assert command.help, f"csctl {name} has no help"
    assert command.get_short_help_str(), f"csctl {name} has no short help"
    if not isinstance(command, click.Group):
        assert "Example" in command.help, f"csctl {name} --help shows no example"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"csctl {name} {param.opts[0]} has no help"


def test_every_subcommand_module_is_listed():
    assert set(SUBCOMMANDS) == {name for name, _ in all_commands() if " " not in name}


def test_help_does_not_import_cloud_sdks_or_htcondor():
    code = (
        "import sys; from csctl.cli import cli\n"
        "try: cli(['--help'], prog_name='csctl')\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('boto3', 'openstack', 'htcondor2', 'classad2', 'pydantic') "
        "if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "HEAVY="
