import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from csctl.cli import cli
from csctl.config import load_config, parse_config
from csctl.errors import ConfigError, ExitCode
from tests.conftest import EXAMPLE_CONFIG

MAX_CONFIG_BYTES = 1 << 20  # documented in docs/configuration.md
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


# -- the file itself ----------------------------------------------------------------------


def test_deeply_nested_arrays_are_one_line_not_a_crash():
    depth = 100_000
    assert problems("x = " + "[" * depth + "]" * depth) == [
        "csctl.toml: not valid TOML: arrays or tables nested too deeply"
    ]


def test_nesting_the_parser_survives_is_still_bounded():
    vm_type = "[vm_types.t]\ncpus = 1\nmemory = 1\ndisk = 1\nimages = {}\n"
    text = MINIMAL + vm_type + "attributes = { Deep = " + "[" * 100 + "]" * 100 + " }\n"
    (line,) = problems(text)
    assert line.startswith("csctl.toml: vm_types.t.attributes.Deep: expected true, false, a finite number")


def test_an_integer_of_thousands_of_digits_is_one_line_not_a_crash():
    assert problems(MINIMAL + "[policy]\nmax_lifetime_hours = " + "9" * 4301 + "\n") == [
        "csctl.toml: not valid TOML: an integer has too many digits"
    ]
    (line,) = problems(MINIMAL + "[policy]\nmax_lifetime_hours = " + "9" * 4300 + "\n")
    assert (
        line
        == "csctl.toml: policy.max_lifetime_hours: expected a 64-bit integer, got an integer of 4300 digits"
    )


def test_text_over_the_bound_is_refused_before_parsing():
    assert problems("#" * (MAX_CONFIG_BYTES + 1)) == ["csctl.toml: is larger than 1 MB"]


def refused(path: Path) -> tuple[list[str], str | None]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value.problems, info.value.hint


def unblock_later(fifo: Path) -> threading.Timer:
    """Before the fix the loader waited in open() for a writer: give it one after a while,
    so the test fails instead of hanging. After the fix nobody reads, and the writer's
    non-blocking open fails harmlessly."""

    def write() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.write(fd, b"late = 1\n")
        os.close(fd)

    timer = threading.Timer(3.0, write)
    timer.daemon = True
    timer.start()
    return timer


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "csctl.toml"
    os.mkfifo(fifo)
    timer = unblock_later(fifo)
    assert refused(fifo) == ([f"{fifo}: is a FIFO, not a regular file"], "give --config the csctl.toml file")
    timer.cancel()


def test_a_device_or_directory_is_refused(tmp_path):
    assert refused(Path("/dev/zero"))[0] == ["/dev/zero: is a character device, not a regular file"]
    assert refused(tmp_path)[0] == [f"{tmp_path}: is a directory, not a regular file"]


def test_a_file_over_the_bound_is_refused_unread(tmp_path):
    big = tmp_path / "csctl.toml"
    big.write_text(MINIMAL + "#" * MAX_CONFIG_BYTES)
    size = big.stat().st_size
    assert refused(big)[0] == [f"{big}: is larger than 1 MB ({size} bytes)"]


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_bytes(MINIMAL.encode() + b"# \xff\n")
    assert refused(path)[0] == [f"{path}: cannot read: not UTF-8 text (byte {len(MINIMAL) + 2})"]


def test_config_check_on_a_fifo_exits_3_with_one_line(tmp_path):
    fifo = tmp_path / "csctl.toml"
    os.mkfifo(fifo)
    timer = unblock_later(fifo)
    result = CliRunner(env={"NO_COLOR": "1", "COLUMNS": "80"}).invoke(
        cli, ["--config", str(fifo), "config", "check"], catch_exceptions=False
    )
    timer.cancel()
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.splitlines() == [
        f"error: {fifo}: is a FIFO, not a regular file",
        "hint: give --config the csctl.toml file",
    ]
