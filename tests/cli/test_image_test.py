"""`csctl image-test` argument errors: one line each, before any cloud or pool is contacted."""

import json
from pathlib import Path

import pytest

from csctl.errors import ExitCode

CONFIG = """
state_dir = "{state}"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
{signing_key}
[clouds.A]
driver = "local"
work_dir = "{work}/A"
[clouds.B]
driver = "local"
work_dir = "{work}/B"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = {{ A = "img-a" }}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    key = tmp_path / "POOL"
    key.write_bytes(b"secret")
    key.chmod(0o600)
    path = tmp_path / "csctl.toml"
    path.write_text(
        CONFIG.format(state=tmp_path / "state", work=tmp_path / "vms", signing_key=f'signing_key = "{key}"')
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cloud", "C", "--type", "big"], 'unknown cloud "C" (known: A, B)'),
        (["--cloud", "A", "--type", "tiny"], 'unknown VM type "tiny" (known: big)'),
        (["--cloud", "B", "--type", "big"], 'VM type "big" has no image on cloud "B" (vm_types.big.images)'),
        (
            ["--cloud", "A", "--type", "big", "--image", "i"],
            "give either --type or --image with --flavor, not both",
        ),
        (["--cloud", "A", "--image", "img-new"], "--image and --flavor go together: give both"),
        (["--cloud", "A", "--flavor", "m1.large"], "--image and --flavor go together: give both"),
        (["--cloud", "A"], "give --type TYPE (repeatable) or --image IMAGE --flavor FLAVOR"),
    ],
)
def test_argument_errors_are_one_line(csctl, config, args, message):
    result = csctl("image-test", *args, config=config)
    assert (result.exit_code, result.stderr, result.stdout) == (ExitCode.USAGE, f"error: {message}\n", "")


def test_unreadable_probe_script(csctl, config, tmp_path):
    missing = tmp_path / "cvmfs-check.sh"
    result = csctl(
        "image-test", "--cloud", "A", "--type", "big", "--probe-script", str(missing), config=config
    )
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == f"error: {missing}: cannot read probe script: No such file or directory\n"


def test_without_signing_key_is_a_config_error(csctl, tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", work=tmp_path / "vms", signing_key=""))
    result = csctl("image-test", "--cloud", "A", "--type", "big", config=path)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {path}: pool.signing_key: required to boot VMs\n"


def test_cloud_is_required_and_timeouts_positive(csctl, config):
    result = csctl("image-test", "--type", "big", config=config)
    assert result.exit_code == ExitCode.USAGE and "Missing option '--cloud'" in result.stderr
    result = csctl("image-test", "--cloud", "A", "--type", "big", "--join-timeout", "0", config=config)
    assert result.exit_code == ExitCode.USAGE and "--join-timeout" in result.stderr


def test_a_cloud_that_refuses_the_boot_fails_at_requested(csctl, config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    down = '[clouds.down]\ndriver = "ec2"\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:9"\n'
    down += "max_attempts = 1\nconnect_timeout = 1\n"
    config.write_text(config.read_text().replace("[vm_types.big]", down + "[vm_types.big]"))
    result = csctl(
        "--json", "image-test", "--cloud", "down", "--image", "ami-1", "--flavor", "m1", config=config
    )
    assert result.exit_code == 11, result.stderr
    (report,) = json.loads(result.stdout)["results"]
    assert [p["state"] for p in report["phases"]] == ["failed"] + ["skipped"] * 6
    assert report["phases"][0]["detail"].startswith("cloud down: ")
    assert report["cleanup_errors"] == [] and report["console"] is None
    assert result.stderr.splitlines()[-1].startswith("error: ami-1: FAILED at requested: cloud down: ")
