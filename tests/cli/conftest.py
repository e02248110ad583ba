from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from csctl.cli import cli
from tests.conftest import EXAMPLE_CONFIG


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def csctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run csctl in-process: NO_COLOR, 80 columns, a temporary HOME, the example config."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CSCTL_CONFIG", raising=False)

    def run(*args: str, config: Path | None = EXAMPLE_CONFIG, input: str | None = None) -> Run:
        runner = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "80", "TERM": "dumb"})
        argv = (["--config", str(config)] if config else []) + list(args)
        result = runner.invoke(cli, argv, input=input, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run
