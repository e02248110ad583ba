"""``csctl run`` where no pool is needed: help, configuration, signing key, lock, state."""

from __future__ import annotations

from csctl.errors import ExitCode
from tests.cli.configs import UNREACHABLE, flat, lock_lines, write_config
from tests.lock_holder import lock_held


def test_help_documents_the_codes_and_shows_examples(csctl):
    result = csctl("run", "--help", config=None)
    assert result.exit_code == 0
    assert "Run one cycle: join-check --fix, demand, boot, retire" in flat(result.stdout)
    assert "(code 6)" in flat(result.stdout) and "4 when some cloud or schedd failed" in flat(result.stdout)
    assert "Examples:" in result.stdout
    assert "*/5 * * * * csctl -q run --metrics-file /var/lib/node_exporter/csctl.prom" in result.stdout
    assert "[env var: CSCTL_METRICS_FILE]" in result.stdout


def test_a_missing_config_file_is_exit_3_naming_it(csctl, tmp_path):
    missing = tmp_path / "none.toml"
    result = csctl("run", config=missing)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {missing}: no such file\nhint: give --config PATH or set CSCTL_CONFIG\n"
    assert result.stdout == ""


def test_without_a_signing_key_nothing_is_done(csctl, tmp_path):
    config = write_config(tmp_path)
    result = csctl("run", config=config)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {config}: pool.signing_key: required to boot and command VMs\n"
    assert not (tmp_path / "state").exists()  # not even the lock was taken


def test_a_signing_key_others_can_read_is_refused(csctl, tmp_path):
    config = write_config(tmp_path, signing_key=True)
    (tmp_path / "POOL").chmod(0o644)
    result = csctl("run", config=config)
    assert result.exit_code == ExitCode.CREDENTIAL
    assert result.stderr.splitlines()[0] == (
        f"error: {tmp_path / 'POOL'}: signing key is accessible by group or others (mode 0644)"
    )


def test_a_second_run_exits_at_once_while_another_holds_the_lock(csctl, tmp_path):
    config = write_config(tmp_path, signing_key=True)
    with lock_held(tmp_path / "state") as pid:
        result = csctl("run", config=config)
    assert result.exit_code == ExitCode.LOCKED
    assert result.stderr.splitlines() == lock_lines(tmp_path / "state", pid)
    assert result.stdout == ""


def test_an_unusable_state_directory_stops_the_cycle_before_it_acts(csctl, tmp_path):
    config = write_config(tmp_path, signing_key=True)
    (tmp_path / "state").write_text("a file, not a directory")
    result = csctl("run", config=config)
    assert result.exit_code == ExitCode.ERROR
    state = tmp_path / "state"
    first = result.stderr.splitlines()[0]
    assert first == f"error: state directory {state}: not a directory; nothing was done"
    assert result.stdout == "" and not (tmp_path / "vms").exists()


def test_dry_run_needs_no_signing_key_and_takes_no_lock(csctl, tmp_path):
    config = write_config(tmp_path)
    with lock_held(tmp_path / "state"):
        result = csctl("run", "--dry-run", config=config)
    # it went on to read the pool, which is not there
    assert result.exit_code == ExitCode.POOL_UNREACHABLE
    assert result.stderr.startswith(UNREACHABLE)


def test_a_metrics_file_that_is_a_directory_is_a_usage_error(csctl, tmp_path):
    config = write_config(tmp_path, signing_key=True)
    result = csctl("run", "--metrics-file", str(tmp_path), config=config)
    assert result.exit_code == ExitCode.USAGE
    assert f"'{tmp_path}' is a directory" in result.stderr
    assert not (tmp_path / "state").exists()
