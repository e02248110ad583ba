"""The shipped completion scripts are what click generates for this csctl."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_current(shell):
    env = {**os.environ, "_CSCTL_COMPLETE": f"{shell}_source"}
    code = "from csctl.cli import cli; cli(prog_name='csctl')"
    generated = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    # the script and the installed click must speak the same completion protocol
    assert generated.rstrip("\n") == (COMPLETIONS / f"csctl.{shell}").read_text().rstrip("\n"), (
        f"regenerate: _CSCTL_COMPLETE={shell}_source csctl > completions/csctl.{shell}"
    )


def test_completion_offers_the_subcommands():
    env = {**os.environ, "_CSCTL_COMPLETE": "bash_complete", "COMP_WORDS": "csctl re", "COMP_CWORD": "1"}
    code = "from csctl.cli import cli; cli(prog_name='csctl')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    assert out.split() == ["plain,retire"]
