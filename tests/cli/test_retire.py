"""``csctl retire`` where no pool is needed: help, signing key, the lock, dry runs."""

from __future__ import annotations

from csctl.errors import ExitCode
from tests.cli.configs import UNREACHABLE, flat, lock_lines, write_config
from tests.lock_holder import lock_held


def test_help_says_when_a_vm_is_retired_and_shows_examples(csctl):
    result = csctl("retire", "--help", config=None)
    assert result.exit_code == 0
    assert "A VM running a job is never terminated without --force." in flat(result.stdout)
    assert "Examples:" in result.stdout
    assert "csctl retire --dry-run" in result.stdout


def test_a_missing_config_file_is_exit_3_naming_it(csctl, tmp_path):
    missing = tmp_path / "none.toml"
    result = csctl("retire", "--dry-run", config=missing)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {missing}: no such file\nhint: give --config PATH or set CSCTL_CONFIG\n"


def test_retiring_without_a_signing_key_is_a_config_error(csctl, tmp_path):
    config = write_config(tmp_path)
    for args in (["retire"], ["retire", "--force"]):
        result = csctl(*args, config=config)
        assert result.exit_code == ExitCode.CONFIG
        assert result.stderr == f"error: {config}: pool.signing_key: required to command VMs\n"
        assert result.stdout == ""


def test_a_dry_run_needs_no_signing_key(csctl, tmp_path):
    result = csctl("retire", "--dry-run", config=write_config(tmp_path))
    assert result.exit_code == ExitCode.POOL_UNREACHABLE  # it went on to read the pool
    assert result.stderr.startswith(UNREACHABLE)


def test_retire_exits_at_once_while_another_csctl_holds_the_lock(csctl, tmp_path):
    config = write_config(tmp_path, signing_key=True)
    with lock_held(tmp_path / "state") as pid:
        result = csctl("retire", config=config)
        dry = csctl("retire", "--dry-run", config=config)
    assert result.exit_code == ExitCode.LOCKED
    assert result.stderr.splitlines() == lock_lines(tmp_path / "state", pid)
    # a dry run only reads, so it does not wait for the lock
    assert dry.exit_code == ExitCode.POOL_UNREACHABLE
