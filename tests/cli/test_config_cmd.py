"""``csctl config check``: the summary, the resolved JSON, and one line per problem."""

from __future__ import annotations

import json

from csctl.errors import ExitCode
from tests.cli.configs import flat, write_config
from tests.conftest import EXAMPLE_CONFIG


def cells(line: str) -> list[str]:
    """The cells of one table row, whatever box characters draw it."""
    return [cell.strip() for cell in line.replace("┃", "│").split("│")]


def test_help_shows_an_example(csctl):
    result = csctl("config", "check", "--help", config=None)
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "csctl --config ./csctl.toml config check" in result.stdout
    group = csctl("config", "--help", config=None)
    assert group.exit_code == 0 and "Inspect csctl's configuration file." in flat(group.stdout)


def test_the_summary_names_the_file_the_pool_the_clouds_and_the_types(csctl, tmp_path):
    config = write_config(tmp_path)
    result = csctl("config", "check", config=config)
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"{config}: OK", "pool pool.test: collector 127.0.0.1:1"]
    rows = [cells(line) for line in lines if "│" in line or "┃" in line]
    assert ["cloud", "driver", "enabled", "priority", "max VMs", "max cores"] in rows
    assert ["A", "local", "yes", "0", "2", "-"] in rows
    assert ["type", "cpus", "memory MB", "disk GB", "arch", "clouds"] in rows
    assert ["big", "8", "16000", "100", "X86_64", "A"] in rows


def test_the_example_configuration_checks(csctl):
    result = csctl("config", "check", config=EXAMPLE_CONFIG)
    assert result.exit_code == 0
    rows = [cells(line) for line in result.stdout.splitlines() if "│" in line]
    assert [row[:3] for row in rows if row[0] in ("FGHotel", "Hermes")] == [
        ["FGHotel", "openstack", "yes"],
        ["Hermes", "ec2", "yes"],
    ]


def test_json_is_every_setting_as_resolved(csctl, tmp_path):
    config = write_config(tmp_path)
    for args in (("--json", "config", "check"), ("config", "check", "--json")):
        result = csctl(*args, config=config)
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        assert data["state_dir"] == str(tmp_path / "state")
        assert data["policy"]["max_new_vms_per_cycle"] == 10  # a default, shown
        assert data["clouds"]["A"]["driver"] == "local"
        assert data["clouds"]["A"]["work_dir"] == str(tmp_path / "vms")  # the driver's own key
        assert data["vm_types"]["big"]["images"] == {"A": "img-a"}


def test_the_config_named_by_csctl_config_is_checked(csctl, tmp_path, monkeypatch):
    config = write_config(tmp_path)
    monkeypatch.setenv("CSCTL_CONFIG", str(config))
    result = csctl("config", "check", config=None)
    assert result.exit_code == 0 and result.stdout.startswith(f"{config}: OK\n")


def test_an_invalid_config_is_exit_3_one_line_per_problem(csctl, tmp_path):
    config = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("cpus = 8", "cpus = 0").replace('driver = "local"', 'driver = "azure"')
    )
    result = csctl("config", "check", config=config)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {config}: vm_types.big.cpus: expected an integer >= 1, got 0",
        f'error: {config}: clouds.A.driver: unknown driver "azure" (known: ec2, local, openstack)',
    ]


def test_a_missing_config_file_is_exit_3_naming_it(csctl, tmp_path):
    missing = tmp_path / "none.toml"
    result = csctl("config", "check", config=missing)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {missing}: no such file\nhint: give --config PATH or set CSCTL_CONFIG\n"
