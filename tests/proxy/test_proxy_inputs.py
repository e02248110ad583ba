"""make_proxy and friends refuse bad input before anything is written; files are 0600."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from csctl.errors import CredentialError
from csctl.proxy import (
    IssueOptions,
    ProxyType,
    create_request,
    load_credential,
    make_proxy,
    proxy_file_bytes,
    proxy_info,
    sign_request,
    write_private,
)
from tests.proxy.pki import Pki, alice, pki  # noqa: F401  (fixtures)


def _refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(CredentialError) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value.message


def test_expired_certificate(pki: Pki) -> None:
    cert, key = pki.user("Old", valid=(timedelta(days=-3), timedelta(days=-1)))
    message = _refusal(make_proxy, load_credential(cert, key))
    assert message.startswith("/O=Test Grid/CN=Old: certificate expired at ")


def test_not_yet_valid_certificate(pki: Pki) -> None:
    cert, key = pki.user("Future", valid=(timedelta(days=1), timedelta(days=3)))
    message = _refusal(make_proxy, load_credential(cert, key))
    assert message.startswith("/O=Test Grid/CN=Future: certificate not valid before ")


def test_key_of_another_certificate(pki: Pki, alice: tuple[Path, Path]) -> None:
    _bob_cert, bob_key = pki.user("Bob")
    message = _refusal(load_credential, alice[0], bob_key)
    assert message == f"{bob_key}: private key does not match the certificate in {alice[0]}"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_key_readable_by_others(pki: Pki, mode: int) -> None:
    cert, key = pki.user(f"Loose{mode:o}")
    key.chmod(mode)
    message = _refusal(load_credential, cert, key)
    assert message == f"{key}: private key file is accessible by group or others (mode {mode:04o})"


def test_encrypted_key_with_its_passphrase(pki: Pki) -> None:
    cert, key = pki.user("Crypt", passphrase=b"s3cret")
    asked: list[bool] = []

    def passphrase() -> bytes:
        asked.append(True)
        return b"s3cret"

    assert load_credential(cert, key, passphrase).cert.subject.rfc4514_string() == "CN=Crypt,O=Test Grid"
    assert asked == [True]


def test_encrypted_key_wrong_passphrase(pki: Pki) -> None:
    cert, key = pki.user("Crypt2", passphrase=b"s3cret")
    message = _refusal(load_credential, cert, key, lambda: b"wrong")
    assert message == f"{key}: wrong passphrase for the private key"


def test_encrypted_key_without_passphrase(pki: Pki) -> None:
    cert, key = pki.user("Crypt3", passphrase=b"s3cret")
    message = _refusal(load_credential, cert, key, None)
    assert message == f"{key}: private key is encrypted and no passphrase was given"


def test_unencrypted_key_never_asks(alice: tuple[Path, Path]) -> None:
    def passphrase() -> bytes:
        raise AssertionError("asked for a passphrase")

    load_credential(*alice, passphrase)


def test_lifetime_capped_at_issuer_with_warning(pki: Pki) -> None:
    cert, key = pki.user("Short", valid=(timedelta(hours=-1), timedelta(hours=2)))
    issuer = load_credential(cert, key)
    made = make_proxy(issuer, IssueOptions(lifetime=timedelta(hours=12)))
    assert made.cert.not_valid_after_utc == issuer.cert.not_valid_after_utc
    end = issuer.cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%SZ")
    assert len(made.warnings) == 1
    assert made.warnings[0].startswith("requested lifetime 12:00 exceeds the issuer's remaining 1:")
    assert made.warnings[0].endswith(f"; the proxy expires with it at {end}")


def test_lifetime_within_issuer_is_kept(alice: tuple[Path, Path]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    made = make_proxy(load_credential(*alice), IssueOptions(lifetime=timedelta(hours=3)), now=now)
    assert made.warnings == []
    assert made.cert.not_valid_after_utc == now + timedelta(hours=3)
    assert made.cert.not_valid_before_utc == now - timedelta(minutes=5)


def _proxy_file(path: Path, made: object) -> Path:
    write_private(path, proxy_file_bytes(made.chain, made.key))  # type: ignore[attr-defined]
    return path


def test_full_proxy_from_limited_is_refused(pki: Pki, alice: tuple[Path, Path]) -> None:
    limited = make_proxy(load_credential(*alice), IssueOptions(limited=True))
    path = _proxy_file(pki.root / "lim-issuer.pem", limited)
    with pytest.raises(CredentialError) as raised:
        make_proxy(load_credential(path, path))
    assert raised.value.message.endswith(": a limited proxy can only issue limited proxies")
    assert raised.value.hint == "add --limited"


def test_path_length_zero_stops_delegation(pki: Pki, alice: tuple[Path, Path]) -> None:
    made = make_proxy(load_credential(*alice), IssueOptions(path_length=0))
    path = _proxy_file(pki.root / "pl0.pem", made)
    message = _refusal(make_proxy, load_credential(path, path))
    assert message.endswith(": allows 0 proxies below it, has 1")


def test_small_keys_are_refused(alice: tuple[Path, Path]) -> None:
    assert _refusal(make_proxy, load_credential(*alice), bits=1024) == (
        "proxy keys need at least 2048 bits, not 1024"
    )


def test_untrusted_ca_is_refused(tmp_path: Path, alice: tuple[Path, Path]) -> None:
    (tmp_path / "empty").mkdir()
    message = _refusal(make_proxy, load_credential(*alice), trust_dir=tmp_path / "empty")
    expected = f"issuer /O=Test Grid/CN=Test CA is not a trusted CA in {tmp_path / 'empty'}"
    assert message.endswith(expected)


def test_sign_refuses_a_tampered_request(alice: tuple[Path, Path]) -> None:
    from cryptography.hazmat.primitives import serialization

    der = bytearray(create_request().csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0xFF
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    message = _refusal(sign_request, pem, load_credential(*alice))
    assert message == "certificate request: its signature does not verify"


def test_written_proxy_is_0600_even_with_umask_0(tmp_path: Path, alice: tuple[Path, Path]) -> None:
    made = make_proxy(load_credential(*alice))
    old = os.umask(0)
    try:
        path = _proxy_file(tmp_path / "x509up", made)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x509up"]


def test_write_replaces_a_symlink_instead_of_following_it(tmp_path: Path, alice: tuple[Path, Path]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "x509up").symlink_to(victim)
    _proxy_file(tmp_path / "x509up", make_proxy(load_credential(*alice)))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "x509up").is_symlink()


def test_proxy_file_layout(tmp_path: Path, alice: tuple[Path, Path]) -> None:
    path = _proxy_file(tmp_path / "p", make_proxy(load_credential(*alice)))
    blocks = [line for line in path.read_text().splitlines() if line.startswith("-----BEGIN")]
    assert blocks == [
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----",
    ]


def test_info_describes_the_chain(tmp_path: Path, alice: tuple[Path, Path]) -> None:
    path = _proxy_file(tmp_path / "p", make_proxy(load_credential(*alice)))
    info = proxy_info(path)
    assert info.type == ProxyType.FULL
    assert info.identity == "/O=Test Grid/CN=Alice"
    assert info.issuer == "/O=Test Grid/CN=Alice"
    assert [c.type for c in info.chain] == [ProxyType.FULL, ProxyType.END_ENTITY]
    assert info.has_key and info.problem is None
    assert 11 * 3600 < info.seconds_left <= 12 * 3600


def test_a_lifetime_past_any_date_is_clamped_not_overflowed(alice: tuple[Path, Path]) -> None:
    issuer = load_credential(*alice)
    made = make_proxy(issuer, IssueOptions(lifetime=timedelta.max))
    assert made.cert.not_valid_after_utc == issuer.cert.not_valid_after_utc
    assert len(made.warnings) == 1


def test_endless_files_are_not_read_whole(alice: tuple[Path, Path]) -> None:
    message = _refusal(load_credential, Path("/dev/zero"), alice[1])
    assert message == "/dev/zero: larger than 1024 KiB, not a credential file"


def test_same_file_sees_links_and_spellings(tmp_path: Path) -> None:
    from csctl.proxy.files import same_file

    key = tmp_path / "key"
    key.write_text("k")
    os.link(key, tmp_path / "hard")
    (tmp_path / "soft").symlink_to(key)
    for alias in (tmp_path / "hard", tmp_path / "soft", tmp_path / "." / "key", key):
        assert same_file(alias, key)
    assert not same_file(tmp_path / "missing", key)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert not same_file(tmp_path / "loop", key)


def test_passphrase_fd_reads_one_line_and_leaves_the_rest(tmp_path: Path) -> None:
    from csctl.proxy import passphrase_from_fd

    read, write = os.pipe()
    os.write(write, b"first\r\nsecond\n")
    os.close(write)
    try:
        assert passphrase_from_fd(read)() == b"first"
        assert os.read(read, 100) == b"second\n"
    finally:
        os.close(read)
