"""csctl's errors and exit codes: distinct, stable, and as the commands document them."""

from __future__ import annotations

import re

import pytest

from csctl.cli.run import command as run_command
from csctl.errors import (
    CloudAuthError,
    CloudBackendError,
    CloudBadRequest,
    CloudError,
    CloudNotFound,
    CloudQuotaError,
    CloudTimeout,
    ConfigError,
    CredentialError,
    CsctlError,
    ExitCode,
    InputError,
    LockHeld,
    PoolUnreachable,
)


def test_exit_codes_are_distinct_and_stable():
    assert len({int(code) for code in ExitCode}) == len(ExitCode)
    # scripts and cron jobs depend on these numbers
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "USAGE": 2,
        "CONFIG": 3,
        "PARTIAL": 4,
        "POOL_UNREACHABLE": 5,
        "LOCKED": 6,
        "CREDENTIAL": 7,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CsctlError("x"), ExitCode.ERROR),
        (ConfigError(["a", "b"]), ExitCode.CONFIG),
        (InputError("x"), ExitCode.USAGE),
        (PoolUnreachable("x"), ExitCode.POOL_UNREACHABLE),
        (CredentialError("x"), ExitCode.CREDENTIAL),
        (LockHeld("x"), ExitCode.LOCKED),
        (CloudQuotaError("A", "x"), ExitCode.ERROR),
    ],
)
def test_each_error_carries_its_exit_code(error, code):
    assert error.exit_code is code


def test_lock_held_exits_with_the_code_run_documents():
    text = " ".join((run_command.help or "").split())  # as wrapped for any width
    documented = re.search(r"exits at once \(code (\d+)\)", text)
    assert documented, "csctl run --help no longer says the code of a held lock"
    assert LockHeld("x").exit_code == int(documented.group(1))
    partial = re.search(r"(\d+) when some cloud or schedd failed", text)
    assert partial and int(partial.group(1)) == ExitCode.PARTIAL


def test_a_config_error_is_one_line_per_problem_and_a_cloud_error_names_its_cloud():
    error = ConfigError(["f: a: bad", "f: b: bad"], hint="fix f")
    assert (error.message, error.problems, error.hint) == (
        "f: a: bad; f: b: bad",
        ["f: a: bad", "f: b: bad"],
        "fix f",
    )
    for kind in (
        CloudAuthError,
        CloudQuotaError,
        CloudBadRequest,
        CloudTimeout,
        CloudNotFound,
        CloudBackendError,
    ):
        error = kind("Hermes", "refused")
        assert isinstance(error, CloudError) and isinstance(error, CsctlError)
        assert (error.cloud, error.message, str(error)) == (
            "Hermes",
            "cloud Hermes: refused",
            "cloud Hermes: refused",
        )
