"""Helpers for the real-pool tests: configuration files and running csctl as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import testbed_config_text


def config_text(condor_pool, tmp_path: Path, extra: str = "") -> str:
    """The test-bed configuration (local cloud, type ``small``) with its state under tmp_path."""
    return testbed_config_text(condor_pool, extra=extra).replace(
        f'state_dir = "{condor_pool.root}/var/lib/csctl-test-state"', f'state_dir = "{tmp_path}/state"'
    )


def csctl(config: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None):
    """Run csctl as an operator (or cron) would: its own process, no colour."""
    environment = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "csctl", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )
