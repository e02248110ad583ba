"""Configurations and traces for the simulator's tests (no pool, no cloud)."""

from __future__ import annotations

from pathlib import Path

from csctl.config import Config, parse_config
from testbed.tracegen import bursty_jobs, swf

CONFIG = """
state_dir = "/nonexistent/csctl-state"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
[clouds.A]
driver = "local"
work_dir = "/nonexistent/vms-a"
priority = 10
{a}
[clouds.B]
driver = "local"
work_dir = "/nonexistent/vms-b"
[vm_types.std]
cpus = 8
memory = 32000
disk = 100
images = {{ A = "img-a", B = "img-b" }}
keep_alive_minutes = {keep_alive}
[policy]
max_new_vms_per_cycle = {per_cycle}
"""


def config_text(a: str = "", keep_alive: int = 10, per_cycle: int = 10) -> str:
    """A two-cloud configuration: A first (``a`` adds keys to it), B after; one 8-core type."""
    return CONFIG.format(a=a, keep_alive=keep_alive, per_cycle=per_cycle)


def config(a: str = "", keep_alive: int = 10, per_cycle: int = 10) -> Config:
    """``config_text`` validated."""
    return parse_config(config_text(a, keep_alive, per_cycle))


def bursty_trace(path: Path, jobs: int = 400, days: float = 2.0, seed: int = 7) -> Path:
    """A bursty SWF trace of several owners in ``path``."""
    path.write_text(swf(bursty_jobs(jobs, days, seed)))
    return path
