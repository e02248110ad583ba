from pathlib import Path

import pytest

from csctl.config import load_config, parse_config
from csctl.errors import ConfigError, ExitCode
from tests.conftest import EXAMPLE_CONFIG

MINIMAL = """
[pool]
name = "pool.test"
collector = "127.0.0.1:9618"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="csctl.toml")
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value.problems


def test_example_reproduces_the_seed_setup():
    config = load_config(EXAMPLE_CONFIG)
    assert list(config.clouds) == ["FGHotel", "Hermes"]
    vm = config.vm_types["pandacernvm"]
    assert (vm.cpus, vm.memory, vm.disk) == (8, 18000, 160)
    assert config.clouds["FGHotel"].driver == "openstack"
    assert config.clouds["Hermes"].driver_options["endpoint_url"].startswith("https://")


def test_minimal_config_has_defaults():
    config = parse_config(MINIMAL)
    assert config.policy.max_new_vms_per_cycle == 10
    assert config.vm_types == {} and config.clouds == {}


def test_integer_with_bound_names_file_key_and_value():
    text = MINIMAL + '[clouds.hermes]\ndriver = "ec2"\nregion = "r"\nmax_vms = "ten"\n'
    assert problems(text) == ['csctl.toml: clouds.hermes.max_vms: expected an integer >= 0, got "ten"']


def test_negative_and_zero_rejected():
    text = MINIMAL + "[vm_types.t]\ncpus = 0\nmemory = -1\ndisk = 1\nimages = {}\n"
    assert problems(text) == [
        "csctl.toml: vm_types.t.cpus: expected an integer >= 1, got 0",
        "csctl.toml: vm_types.t.memory: expected an integer >= 1, got -1",
    ]


def test_unknown_keys_rejected_everywhere_including_driver_sections():
    text = MINIMAL.replace("[pool]", "[pool]\ncolector = 1") + ('[clouds.h]\ndriver = "ec2"\nregoin = "x"\n')
    assert problems(text) == [
        "csctl.toml: pool.colector: unknown key",
        "csctl.toml: clouds.h.region: required key is missing",
        "csctl.toml: clouds.h.regoin: unknown key",
    ]


def test_unknown_driver_lists_known_ones():
    assert problems(MINIMAL + '[clouds.a]\ndriver = "azure"\n') == [
        'csctl.toml: clouds.a.driver: unknown driver "azure" (known: ec2, local, openstack)'
    ]


def test_image_for_unknown_cloud():
    text = MINIMAL + '[vm_types.t]\ncpus = 1\nmemory = 1\ndisk = 1\nimages = { Mars = "x" }\n'
    assert problems(text) == ["csctl.toml: vm_types.t.images: unknown cloud 'Mars' (known: none configured)"]


def test_missing_required_section():
    assert problems("[policy]\n") == ["csctl.toml: pool: required key is missing"]


def test_not_toml():
    (line,) = problems("[pool\n")
    assert line.startswith("csctl.toml: not valid TOML: ")


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "none.toml")
    assert info.value.problems == [f"{tmp_path / 'none.toml'}: no such file"]
    assert info.value.hint == "give --config PATH or set CSCTL_CONFIG"
