"""The driver registry: built-in drivers, third-party ones from entry points, and the typed
settings ``load_config`` keeps for ``make_cloud``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from csctl.clouds.registry import (
    BUILTIN_DRIVERS,
    ENTRY_POINT_GROUP,
    driver_module,
    driver_settings_model,
    known_drivers,
    make_cloud,
)
from csctl.config import CloudConfig, load_config
from csctl.errors import ConfigError, ExitCode

CONFIG = """
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
[clouds.L]
driver = "local"
work_dir = "{tmp}/vms"
condor_config = "UPDATE_INTERVAL = 5"
[clouds.H]
driver = "ec2"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:1"
[clouds.F]
driver = "openstack"
cloud = "fg"
"""


def test_the_built_in_drivers_are_known():
    assert set(BUILTIN_DRIVERS) == {"ec2", "local", "openstack"}
    assert set(BUILTIN_DRIVERS) <= set(known_drivers())
    for name in BUILTIN_DRIVERS:
        module = driver_module(name)
        assert issubclass(module.Settings, BaseModel) and callable(module.Driver)
        assert driver_settings_model(name) is module.Settings


def test_an_unknown_driver_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError) as info:
        driver_module("azure")
    assert info.value.problems == ['unknown driver "azure" (known: ec2, local, openstack)']
    assert info.value.exit_code == ExitCode.CONFIG


def test_load_config_keeps_each_drivers_typed_settings(tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_text(CONFIG.format(tmp=tmp_path))
    config = load_config(path)
    for name, cloud in config.clouds.items():
        assert type(cloud.settings) is driver_module(cloud.driver).Settings, name
    local = config.clouds["L"].settings
    assert local.work_dir == tmp_path / "vms" and isinstance(local.work_dir, Path)
    assert config.clouds["H"].settings.region == "us-east-1"
    assert config.clouds["F"].settings.cloud == "fg"


def test_make_cloud_hands_the_driver_the_settings_load_config_kept(tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_text(CONFIG.format(tmp=tmp_path))
    config = load_config(path)
    cloud = make_cloud("L", config.clouds["L"])
    assert isinstance(cloud, driver_module("local").Driver)
    assert cloud.name == "L"
    assert cloud.settings is config.clouds["L"].settings
    assert cloud.list_instances("pool.test") == []  # a working driver: its work_dir is empty


def test_a_cloud_config_built_by_hand_validates_its_settings_on_first_use(tmp_path):
    cloud = CloudConfig(driver="local", work_dir=str(tmp_path))
    assert cloud.settings.work_dir == tmp_path
    assert cloud.settings is cloud.settings  # validated once
    assert make_cloud("X", cloud).settings is cloud.settings


PLUGIN = """
from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    endpoint: str


class Driver:
    metadata_service = "none"
    user_data_limit = None
    private_network = False

    def __init__(self, name, settings):
        self.name = name
        self.settings = settings
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """An installed third-party driver: a module and a dist-info naming it in the
    csctl.clouds.v1 entry-point group, as pip would leave them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "csctl_toy_cloud.py").write_text(PLUGIN)
    info = site / "csctl_toy_cloud-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: csctl-toy-cloud\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        toy = csctl_toy_cloud
        local = csctl_toy_cloud
        """)
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("csctl_toy_cloud", None)


@pytest.mark.usefixtures("plugin")
def test_a_plugin_driver_is_found_and_built_ins_win_over_it(tmp_path):
    drivers = known_drivers()
    assert drivers["toy"] == "csctl_toy_cloud"
    assert drivers["local"] == BUILTIN_DRIVERS["local"]
    path = tmp_path / "csctl.toml"
    path.write_text(
        '[pool]\nname = "p"\ncollector = "c"\n[clouds.T]\ndriver = "toy"\nendpoint = "http://toy"\n'
    )
    config = load_config(path)
    cloud = make_cloud("T", config.clouds["T"])
    assert type(cloud).__module__ == "csctl_toy_cloud"
    assert cloud.settings is config.clouds["T"].settings
    assert cloud.settings.endpoint == "http://toy"
    with pytest.raises(ConfigError) as info:
        driver_module("azure")
    assert info.value.problems == ['unknown driver "azure" (known: ec2, local, openstack, toy)']
