from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG


@pytest.fixture
def pool_config_file(condor_pool, tmp_path: Path) -> Path:
    """The example configuration (FGHotel, Hermes, pandacernvm) pointed at the test pool,
    with both clouds served by the local driver so that listing them works here."""
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace('name = "pool.example.org"', f'name = "{condor_pool.trust_domain}"')
    text = text.replace('"cm.example.org:9618"', f'"{condor_pool.collector}"')
    collector_line = f'collector = "{condor_pool.collector}"'
    text = text.replace(
        collector_line, f'{collector_line}\nfilesystem_domain = "{condor_pool.filesystem_domain}"'
    )
    head, _, rest = text.partition("[clouds.FGHotel]")
    _, _, types = rest.partition("[vm_types.pandacernvm]")
    clouds = "".join(
        f'[clouds.{name}]\ndriver = "local"\nroot = "{condor_pool.root}"\n'
        f'work_dir = "/var/lib/csctl-testbed/local-{name}"\n\n'
        for name in ("FGHotel", "Hermes")
    )
    path = tmp_path / "csctl.toml"
    path.write_text(
        f"{head}{clouds}[vm_types.pandacernvm]{types}".replace(
            'state_dir = "/var/lib/csctl"', f'state_dir = "{tmp_path}/state"'
        )
    )
    return path


@pytest.fixture
def pool_config(pool_config_file: Path):
    from csctl.config import load_config

    return load_config(pool_config_file)


@pytest.fixture
def local_cloud(testbed_config):
    """The test bed's local cloud, emptied before and after the test."""
    from csctl.clouds.registry import make_cloud

    cloud = make_cloud("local", testbed_config.clouds["local"])
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))
    yield cloud
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))
