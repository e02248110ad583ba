"""``csctl delegate-proxy`` through click's CliRunner, with real files and a real CA."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from csctl.cli import cli
from csctl.proxy import load_credential
from tests.proxy.pki import Pki, alice, full_under_limited, pki  # noqa: F401  (fixtures)


@pytest.fixture
def run(tmp_path: Path, pki: Pki, alice: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    """Invoke csctl with NO_COLOR, COLUMNS=80, a temporary HOME and Alice's credentials."""
    env = {
        "NO_COLOR": "1",
        "COLUMNS": "80",
        "HOME": str(tmp_path),
        "X509_USER_CERT": str(alice[0]),
        "X509_USER_KEY": str(alice[1]),
        "X509_USER_PROXY": str(tmp_path / "x509up"),
        "X509_CERT_DIR": str(pki.cert_dir),
        "CSCTL_DEBUG": "",
    }

    def invoke(*args: str, debug: bool = False, **kwargs: object) -> Result:
        with_debug = {**env, "CSCTL_DEBUG": "1" if debug else ""}
        return CliRunner().invoke(cli, ["delegate-proxy", *args], env=with_debug, **kwargs)  # type: ignore[arg-type]

    return invoke


def test_makes_a_proxy_at_x509_user_proxy(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run()
    assert result.exit_code == 0, result.output
    proxy = tmp_path / "x509up"
    assert stat.S_IMODE(proxy.stat().st_mode) == 0o600
    assert "type        : full proxy\n" in result.stdout
    assert "identity    : /O=Test Grid/CN=Alice\n" in result.stdout
    assert result.stderr == ""


def test_limited_then_info_json(run) -> None:  # type: ignore[no-untyped-def]
    assert run("--limited").exit_code == 0
    result = run("--info", "--json")
    assert result.exit_code == 0
    assert '"type": "limited proxy"' in result.stdout


def test_lifetime_beyond_the_issuer_is_capped_with_a_warning(run, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Brief", valid=(timedelta(hours=-1), timedelta(hours=1)))
    result = run("--cert", str(cert), "--key", str(key), "--valid", "24:00")
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("warning: requested lifetime 24:00 exceeds the issuer's remaining 0:")


def _error(result: Result, code: int, message: str, hint: str | None = None) -> None:
    expected = f"error: {message}\n" + (f"hint: {hint}\n" if hint else "")
    assert (result.exit_code, result.stderr) == (code, expected)


def test_expired_certificate_writes_nothing(run, pki: Pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Gone", valid=(timedelta(days=-3), timedelta(days=-2)))
    result = run("--cert", str(cert), "--key", str(key))
    assert result.exit_code == 7
    assert result.stderr.startswith("error: /O=Test Grid/CN=Gone: certificate expired at ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "x509up").exists()


def test_mismatched_key(run, pki: Pki, alice: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    _cert, other = pki.user("Mallory")
    message = f"{other}: private key does not match the certificate in {alice[0]}"
    _error(run("--key", str(other)), 7, message)


def test_key_readable_by_group(run, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Lax")
    key.chmod(0o640)
    result = run("--cert", str(cert), "--key", str(key))
    message = f"{key}: private key file is accessible by group or others (mode 0640)"
    _error(result, 7, message, f"chmod 600 {key}")


def _pipe(text: bytes) -> int:
    read, write = os.pipe()
    os.write(write, text)
    os.close(write)
    return read


def test_passphrase_fd(run, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Fd", passphrase=b"open sesame")
    fd = _pipe(b"open sesame\n")
    try:
        result = run("--cert", str(cert), "--key", str(key), "--passphrase-fd", str(fd), debug=True)
    finally:
        os.close(fd)
    assert result.exit_code == 0, result.output
    # debug logs included: neither the passphrase nor a private key is printed
    assert "sesame" not in result.output and "PRIVATE KEY" not in result.output


def test_wrong_passphrase_fd(run, pki: Pki) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Fd2", passphrase=b"open sesame")
    fd = _pipe(b"guess-Zm9v\n")
    try:
        result = run("--cert", str(cert), "--key", str(key), "--passphrase-fd", str(fd), debug=True)
    finally:
        os.close(fd)
    # --debug: the traceback first, then the same one line and exit code
    assert result.exit_code == 7 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith(f"error: {key}: wrong passphrase for the private key\n")
    assert "guess-Zm9v" not in result.output and "sesame" not in result.output


def test_passphrase_asked_on_the_terminal(run, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("Tty", passphrase=b"typed")
    prompts: list[str] = []

    def terminal(prompt: str) -> str:  # the terminal is the process edge
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr("csctl.cli.delegate_proxy.getpass.getpass", terminal)
    assert run("--cert", str(cert), "--key", str(key)).exit_code == 0
    assert prompts == [f"Enter pass phrase for {key}: "]


def test_no_terminal_for_the_passphrase(run, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cert, key = pki.user("NoTty", passphrase=b"typed")

    def no_terminal(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("csctl.cli.delegate_proxy.getpass.getpass", no_terminal)
    result = run("--cert", str(cert), "--key", str(key))
    message = f"{key}: private key is encrypted and no passphrase was given"
    _error(result, 7, message, "type it on a terminal or use --passphrase-fd")


def test_full_proxy_from_a_limited_one(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("--limited").exit_code == 0
    proxy = str(tmp_path / "x509up")
    result = run("--cert", proxy, "--key", proxy, "--out", str(tmp_path / "second"))
    assert result.exit_code == 7
    assert result.stderr.endswith(": a limited proxy can only issue limited proxies\nhint: add --limited\n")
    assert not (tmp_path / "second").exists()


def test_info_on_a_forged_chain_shows_it_and_fails(run, alice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    forged = full_under_limited(load_credential(*alice), tmp_path / "forged.pem")
    result = run("--info", str(forged))
    assert result.exit_code == 7
    assert "type        : full proxy\n" in result.stdout
    assert result.stderr.endswith(": full proxy under a limited proxy\n")


def test_delegation_round_trip(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    req = tmp_path / "req.pem"
    assert run("--request", str(req)).exit_code == 0
    kept = tmp_path / "req.pem.key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    signed = run("--sign", str(req))
    assert signed.exit_code == 0 and "PRIVATE KEY" not in signed.stdout
    (tmp_path / "signed.pem").write_text(signed.stdout)
    out = tmp_path / "delegated"
    result = run("--assemble", str(tmp_path / "signed.pem"), "--request-key", str(kept), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and not kept.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--request", "a", "--sign", "b"], "choose one of --request / --sign"),
        (["--assemble", "certs.pem"], "--assemble needs --request-key, the key kept by --request"),
        (["--valid", "12h"], "--valid: expected H:M such as 12:00, got '12h'"),
    ],
)
def test_usage_errors(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    _error(run(*args), 2, message)


def test_help_names_environment_variables_and_an_example(run) -> None:  # type: ignore[no-untyped-def]
    text = run("--help").stdout
    for needle in (
        "X509_USER_CERT",
        "X509_USER_KEY",
        "X509_USER_PROXY",
        "X509_CERT_DIR",
        "Examples:",
        "--passphrase-fd",
        "--require-trust",
    ):
        assert needle in text
