"""``csctl join-check`` where no pool is needed: help, configuration, the lock of --fix."""

from __future__ import annotations

from csctl.errors import ExitCode
from tests.cli.configs import UNREACHABLE, flat, lock_lines, write_config
from tests.lock_holder import lock_held


def test_help_names_every_status_and_shows_examples(csctl):
    result = csctl("join-check", "--help", config=None)
    assert result.exit_code == 0
    for status in ("booting", "idle", "busy", "draining", "never-joined", "error", "stopped", "lost"):
        assert status in flat(result.stdout)
    assert "Examples:" in result.stdout
    assert "csctl join-check --fix --dry-run" in result.stdout


def test_a_missing_config_file_is_exit_3_naming_it(csctl, tmp_path):
    missing = tmp_path / "none.toml"
    result = csctl("join-check", config=missing)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {missing}: no such file\nhint: give --config PATH or set CSCTL_CONFIG\n"


def test_an_invalid_config_is_one_line_per_problem(csctl, tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("max_vms = 2", 'max_vms = "two"\nflavour = "x"'))
    result = csctl("join-check", config=config)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr.splitlines() == [
        f'error: {config}: clouds.A.max_vms: expected an integer >= 0, got "two"',
        f"error: {config}: clouds.A.flavour: unknown key",
    ]


def test_an_unreachable_pool_is_exit_5(csctl, tmp_path):
    result = csctl("join-check", config=write_config(tmp_path))
    assert result.exit_code == ExitCode.POOL_UNREACHABLE
    assert result.stderr.startswith(UNREACHABLE) and result.stdout == ""


def test_fix_exits_at_once_while_another_csctl_holds_the_lock(csctl, tmp_path):
    config = write_config(tmp_path)
    with lock_held(tmp_path / "state") as pid:
        fix = csctl("join-check", "--fix", config=config)
        look = csctl("join-check", config=config)
        dry = csctl("join-check", "--fix", "--dry-run", config=config)
    assert fix.exit_code == ExitCode.LOCKED
    assert fix.stderr.splitlines() == lock_lines(tmp_path / "state", pid)
    # only looking, or naming what --fix would do, takes no lock: they go on to the pool
    assert (look.exit_code, dry.exit_code) == (ExitCode.POOL_UNREACHABLE, ExitCode.POOL_UNREACHABLE)
