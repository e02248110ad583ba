"""Shared fixtures. The test bed's real peers come from testbed/ as pytest plugins."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # a local config must not leak into tests

# A missing plugin shows up as "fixture not found" in the tests that need it.
pytest_plugins = [
    name
    for name in ("testbed.fixtures_pool", "testbed.fixtures_nova")
    if importlib.util.find_spec(name) is not None
]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "examples" / "csctl.toml"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def seed_config():
    """The documented example configuration: FGHotel + Hermes, pandacernvm 8/18000/160."""
    from csctl.config import load_config

    return load_config(EXAMPLE_CONFIG)
