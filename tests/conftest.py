"""Shared fixtures. The test bed's real peers come from testbed/ as pytest plugins."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # a local config must not leak into tests

# Property tests: no per-example deadline (a loaded 2-core CI machine is not a slow
# planner), and in CI the same examples every run, so that its verdict is the code's.
settings.register_profile("csctl", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("csctl")

# A missing plugin shows up as "fixture not found" in the tests that need it.
pytest_plugins = [
    name
    for name in (
        "testbed.fixtures_pool",
        "testbed.fixtures_nova",
        "testbed.fixtures_moto",
        "testbed.fixtures_player",
        "testbed.fixtures_quotas",
    )
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


def testbed_config_text(condor_pool, extra: str = "") -> str:
    """A csctl configuration for the test pool with a local cloud inside its chroot."""
    return f"""
state_dir = "{condor_pool.root}/var/lib/csctl-test-state"

[pool]
name = "{condor_pool.trust_domain}"
collector = "{condor_pool.collector}"
filesystem_domain = "{condor_pool.filesystem_domain}"
signing_key = "{condor_pool.signing_key_path}"
vm_config = "UPDATE_INTERVAL = 5"

[clouds.local]
driver = "local"
root = "{condor_pool.root}"
work_dir = "/var/lib/csctl-testbed/local"
# jobs inside the test bed's chroot cannot unshare a mount namespace
condor_config = '''
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
MOUNT_UNDER_SCRATCH =
'''

[vm_types.small]
cpus = 2
memory = 2000
disk = 10
images = {{ local = "host" }}
{extra}
"""


@pytest.fixture
def testbed_config(condor_pool):
    """The parsed test-bed configuration (local cloud, VM type ``small``)."""
    from csctl.config import parse_config

    return parse_config(testbed_config_text(condor_pool))
