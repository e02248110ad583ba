"""``csctl delegate-proxy`` given hostile or careless input: one line, the right exit code,
and the user's long-term certificate and key never touched. Real files, a real CA."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from csctl.cli import cli
from csctl.proxy import load_credential
from tests.proxy.pki import Pki, pki  # noqa: F401  (fixtures)

Run = Callable[..., Result]


_USERS = itertools.count()


@pytest.fixture
def user(pki: Pki) -> tuple[Path, Path]:
    """A fresh user per test (tests try to destroy its files), key encrypted with 'pw'."""
    return pki.user(f"User{next(_USERS)}", passphrase=b"pw")


@pytest.fixture
def run(tmp_path: Path, pki: Pki, user: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Run:
    """csctl delegate-proxy with the user's credential; the terminal answers 'pw' and records
    each prompt in ``run.prompts``."""
    prompts: list[str] = []

    def terminal(prompt: str) -> str:  # the terminal is the process edge
        prompts.append(prompt)
        return "pw"

    monkeypatch.setattr("csctl.cli.delegate_proxy.getpass.getpass", terminal)
    env = {
        "NO_COLOR": "1",
        "COLUMNS": "80",
        "HOME": str(tmp_path),
        "X509_USER_CERT": str(user[0]),
        "X509_USER_KEY": str(user[1]),
        "X509_USER_PROXY": str(tmp_path / "x509up"),
        "X509_CERT_DIR": str(pki.cert_dir),
        "CSCTL_DEBUG": "",
    }

    def invoke(*args: str, debug: bool = False, extra_env: dict[str, str | None] | None = None) -> Result:
        merged = {**env, "CSCTL_DEBUG": "1" if debug else "", **(extra_env or {})}
        return CliRunner().invoke(cli, ["delegate-proxy", *args], env=merged)  # type: ignore[arg-type]

    invoke.prompts = prompts  # type: ignore[attr-defined]
    return invoke


def _one_line(result: Result, code: int, message: str) -> None:
    assert (result.exit_code, result.stderr) == (code, f"error: {message}\n"), result.output


def _snapshot(paths: tuple[Path, Path]) -> list[tuple[bytes, int, int]]:
    return [(p.read_bytes(), p.stat().st_ino, p.stat().st_mode) for p in paths]


# ------------------------------------------------------------ --out naming the user's credential


def _same(user: tuple[Path, Path], tmp_path: Path, how: str) -> tuple[Path, str]:
    cert, key = user
    if how == "key":
        return key, "--key"
    if how == "cert":
        return cert, "--cert"
    if how == "dotted":
        return key.parent / ".." / key.parent.name / key.name, "--key"
    link = tmp_path / f"{how}-link"
    if how == "symlink":
        link.symlink_to(key)
    else:
        os.link(key, link)
    return link, "--key"


@pytest.mark.parametrize("how", ["key", "cert", "dotted", "symlink", "hardlink"])
def test_out_naming_the_users_key_or_cert_is_refused(
    run: Run, user: tuple[Path, Path], tmp_path: Path, how: str
) -> None:
    out, option = _same(user, tmp_path, how)
    before = _snapshot(user)
    listing = sorted(os.listdir(user[0].parent))
    result = run("--out", str(out))
    _one_line(result, 2, f"--out {out}: it is the {option} file, which csctl never overwrites")
    assert run.prompts == []  # type: ignore[attr-defined]  # refused before the passphrase is asked
    assert sorted(os.listdir(user[0].parent)) == listing  # no temporary file either
    assert _snapshot(user) == before


def test_default_out_naming_the_key_is_refused(run: Run, user: tuple[Path, Path]) -> None:
    result = run(extra_env={"X509_USER_PROXY": str(user[1])})
    _one_line(result, 2, f"--out {user[1]}: it is the --key file, which csctl never overwrites")


def test_sign_out_naming_the_key_is_refused(run: Run, user: tuple[Path, Path], tmp_path: Path) -> None:
    assert run("--request", str(tmp_path / "req.pem")).exit_code == 0
    result = run("--sign", str(tmp_path / "req.pem"), "--out", str(user[1]))
    _one_line(result, 2, f"--out {user[1]}: it is the --key file, which csctl never overwrites")


def test_refresh_out_naming_the_cert_is_refused(run: Run, user: tuple[Path, Path]) -> None:
    result = run("--refresh-jobs", "--out", str(user[0]))  # refused before any pool is asked
    _one_line(result, 2, f"--out {user[0]}: it is the --cert file, which csctl never overwrites")


def test_request_key_naming_the_key_is_refused(run: Run, user: tuple[Path, Path], tmp_path: Path) -> None:
    before = _snapshot(user)
    result = run("--request", str(tmp_path / "req.pem"), "--request-key", str(user[1]))
    _one_line(result, 2, f"--request-key {user[1]}: it is the --key file, which csctl never overwrites")
    assert not (tmp_path / "req.pem").exists()
    assert _snapshot(user) == before


def test_assemble_never_removes_the_users_key(run: Run, pki: Pki, tmp_path: Path) -> None:
    # an unencrypted user key named as the kept request key: assembling removes that file
    cert, key = pki.user("Plain")
    result = run("--assemble", str(cert), "--request-key", str(key), "--key", str(key))
    _one_line(result, 2, f"--request-key {key}: it is the --key file, which csctl never overwrites")
    assert key.exists()


# ------------------------------------------------------------ passphrases


def _fd_run(run: Run, fd: int | str, **kwargs: object) -> Result:
    return run("--passphrase-fd", str(fd), **kwargs)


def _pipe(data: bytes) -> int:
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def test_empty_passphrase_from_the_terminal(run: Run, user: tuple[Path, Path], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("csctl.cli.delegate_proxy.getpass.getpass", lambda prompt: "")
    result = run()
    _one_line(result, 7, f"{user[1]}: private key is encrypted and the passphrase given is empty")


def test_empty_passphrase_from_an_fd(run: Run, user: tuple[Path, Path], tmp_path: Path) -> None:
    fd = _pipe(b"\n")
    try:
        result = _fd_run(run, fd)
    finally:
        os.close(fd)
    _one_line(result, 7, f"{user[1]}: private key is encrypted and the passphrase given is empty")
    assert not (tmp_path / "x509up").exists()


@pytest.mark.parametrize("text", ["x", "-1", "3.0", "99999999999999999999", "٣"])
def test_passphrase_fd_not_a_number(run: Run, text: str) -> None:
    _one_line(
        _fd_run(run, text), 2, f"--passphrase-fd: expected a file descriptor number such as 3, got {text!r}"
    )


def test_passphrase_fd_closed(run: Run) -> None:
    fd = _pipe(b"")
    os.close(fd)
    result = _fd_run(run, fd)
    _one_line(result, 2, f"--passphrase-fd {fd}: not an open file descriptor (Bad file descriptor)")


def test_passphrase_fd_a_directory(run: Run, tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        result = _fd_run(run, fd)
    finally:
        os.close(fd)
    _one_line(result, 2, f"--passphrase-fd {fd}: is a directory, not a passphrase")


def test_passphrase_fd_write_only(run: Run, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = _fd_run(run, fd)
    finally:
        os.close(fd)
    _one_line(result, 2, f"--passphrase-fd {fd}: not open for reading")


def test_passphrase_fd_at_end_of_file(run: Run, tmp_path: Path) -> None:
    fd = _pipe(b"")
    try:
        result = _fd_run(run, fd)
    finally:
        os.close(fd)
    _one_line(result, 2, f"--passphrase-fd {fd}: end of file before any passphrase")
    assert not (tmp_path / "x509up").exists()


def test_passphrase_fd_giving_megabytes(run: Run, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"Zq7" * 1_000_000)
    fd = os.open(big, os.O_RDONLY)
    try:
        result = _fd_run(run, fd, debug=True)
    finally:
        os.close(fd)
    assert result.exit_code == 2
    assert result.stderr.endswith(f"error: --passphrase-fd {fd}: passphrase longer than 1024 bytes\n")
    assert "Zq7Zq7" not in result.output  # --debug shows the traceback, never the secret
    assert not (tmp_path / "x509up").exists()


# ------------------------------------------------------------ lifetimes and thresholds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100000000000000000000", "--valid: at most 876000 hours (100 years), got '100000000000000000000'"),
        ("876001:00", "--valid: at most 876000 hours (100 years), got '876001:00'"),
        ("9" * 5000, f"--valid: at most 876000 hours (100 years), got '{'9' * 5000}'"),
        ("0:00", "--valid: a proxy needs a lifetime of at least 0:01"),
        ("²", "--valid: expected H:M such as 12:00, got '²'"),
        ("1:" + "0" * 5000, f"--valid: expected H:M such as 12:00, got '1:{'0' * 5000}'"),
    ],
)
def test_unusable_lifetimes(run: Run, text: str, message: str, tmp_path: Path) -> None:
    _one_line(run("--valid", text), 2, message)
    assert not (tmp_path / "x509up").exists()


def test_lifetime_beyond_the_certificate_is_clamped(
    run: Run, user: tuple[Path, Path], tmp_path: Path
) -> None:
    result = run("--valid", "876000:00")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: requested lifetime 876000:00 exceeds the issuer's remaining ")
    proxy = load_credential(tmp_path / "x509up", tmp_path / "x509up")
    assert proxy.cert.not_valid_after_utc == proxy.chain[1].not_valid_after_utc


@pytest.mark.parametrize("text", ["100000000000000000000h", "876001h", "1" * 5000 + "d", "876000:01"])
def test_unusable_thresholds(run: Run, text: str) -> None:
    result = run("--refresh-jobs", "--dry-run", "--threshold", text)
    _one_line(result, 2, f"--threshold: at most 876000 hours (100 years), got {text!r}")


# ------------------------------------------------------------ no CA directory anywhere


@pytest.fixture
def no_ca_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str | None]:
    """No $X509_CERT_DIR, no ~/.globus/certificates, and no system directory."""
    monkeypatch.setattr("csctl.proxy.chain.SYSTEM_TRUST_DIR", tmp_path / "no-such-dir")
    return {"X509_CERT_DIR": None}


NO_CA = (
    "no CA directory (--cert-dir, $X509_CERT_DIR, ~/.globus/certificates, "
    "/etc/grid-security/certificates): the certificate's CA is not checked"
)


def test_no_ca_directory_warns(run: Run, no_ca_dir: dict[str, str | None], tmp_path: Path) -> None:
    result = run(extra_env=no_ca_dir)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: {NO_CA}; set X509_CERT_DIR or --cert-dir to your grid CA directory"
        " (or pass --require-trust to refuse)\n"
    )
    assert (tmp_path / "x509up").exists()


def test_no_ca_directory_refused_with_require_trust(
    run: Run, no_ca_dir: dict[str, str | None], tmp_path: Path
) -> None:
    result = run("--require-trust", extra_env=no_ca_dir)
    assert (result.exit_code, result.stderr) == (
        7,
        f"error: {NO_CA}, and --require-trust was given\n"
        "hint: set X509_CERT_DIR or --cert-dir to your grid CA directory\n",
    )
    assert run.prompts == []  # type: ignore[attr-defined]
    assert not (tmp_path / "x509up").exists()


def test_require_trust_with_a_ca_directory_proxies(run: Run) -> None:
    result = run("--require-trust")
    assert (result.exit_code, result.stderr) == (0, "")


# ------------------------------------------------------------ what is written


def test_symlink_at_out_is_replaced_and_its_target_untouched(run: Run, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    victim.chmod(0o644)
    out = tmp_path / "proxy"
    out.symlink_to(victim)
    result = run("--out", str(out))
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not out.is_symlink() and stat.S_IMODE(out.lstat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_dangling_symlink_at_out_creates_nothing_at_its_target(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "proxy"
    out.symlink_to(tmp_path / "elsewhere")
    assert run("--out", str(out)).exit_code == 0
    assert not (tmp_path / "elsewhere").exists() and not out.is_symlink()


def test_out_that_is_no_file_name(run: Run) -> None:
    _one_line(run("--out", "/"), 2, "'/': not a file name to write")


def test_certificate_file_of_megabytes(run: Run, tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    big.write_bytes(b"A" * (2 * 1024 * 1024))
    _one_line(run("--cert", str(big)), 7, f"{big}: larger than 1024 KiB, not a credential file")


def test_private_key_files_written_are_0600(run: Run, tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert run("--request", str(tmp_path / "req.pem")).exit_code == 0
        signed = run("--sign", str(tmp_path / "req.pem"), "--out", str(tmp_path / "signed.pem"))
        assert signed.exit_code == 0
        assert run("--valid", "1:00").exit_code == 0
    finally:
        os.umask(old)
    for name in ("req.pem.key", "x509up"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_proxy_outlives_no_certificate_of_its_chain(run: Run, pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.user("Brief", valid=(timedelta(hours=-1), timedelta(hours=1)))
    assert run("--cert", str(cert), "--key", str(key), "--valid", "876000:00").exit_code == 0
    second = tmp_path / "second"
    proxy = str(tmp_path / "x509up")
    assert run("--cert", proxy, "--key", proxy, "--out", str(second), "--valid", "48:00").exit_code == 0
    chain = load_credential(second, second).chain
    assert chain[0].not_valid_after_utc == min(c.not_valid_after_utc for c in chain)
