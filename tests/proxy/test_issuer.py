"""Resolving the issuer's credential from explicit arguments, and the proxies it makes."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from csctl.errors import CredentialError
from csctl.proxy import IssueOptions, ProxyType, default_trust_dir, proxy_info
from csctl.proxy.issuer import Issuer
from csctl.proxy.model import BACKDATE
from tests.proxy.pki import Pki, alice, pki  # noqa: F401  (fixtures)

OPTIONS = IssueOptions(lifetime=timedelta(hours=2), limited=True)


def _no_prompt(prompt: str) -> str:
    raise AssertionError(f"asked {prompt!r}")


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X509_USER_CERT", str(tmp_path / "c.pem"))
    monkeypatch.setenv("X509_USER_KEY", str(tmp_path / "k.pem"))
    issuer = Issuer.resolve(OPTIONS, prompt=_no_prompt)
    assert (issuer.cert, issuer.key) == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert issuer.trust_dir == default_trust_dir()
    assert issuer.options is OPTIONS


def test_given_paths_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("X509_USER_CERT", str(tmp_path / "env.pem"))
    issuer = Issuer.resolve(
        OPTIONS, prompt=_no_prompt, cert=tmp_path / "c", key=tmp_path / "k", cert_dir=tmp_path / "ca"
    )
    assert (issuer.cert, issuer.key, issuer.trust_dir) == (tmp_path / "c", tmp_path / "k", tmp_path / "ca")


def test_makes_the_proxy_asked_for(pki: Pki, alice: tuple[Path, Path], tmp_path: Path) -> None:
    issuer = Issuer.resolve(OPTIONS, prompt=_no_prompt, cert=alice[0], key=alice[1], cert_dir=pki.cert_dir)
    made = issuer.make_proxy_file(tmp_path / "proxy", bits=2048)
    assert stat.S_IMODE((tmp_path / "proxy").stat().st_mode) == 0o600
    info = proxy_info(tmp_path / "proxy", trust_dir=pki.cert_dir)
    assert info.type is ProxyType.LIMITED and info.identity == "/O=Test Grid/CN=Alice"
    # its start is set back BACKDATE for clocks running behind; its end is 2 hours from now
    assert (
        made.chain[0].not_valid_after_utc - made.chain[0].not_valid_before_utc
        == timedelta(hours=2) + BACKDATE
    )


def test_the_prompt_is_asked_only_when_a_proxy_is_made(pki: Pki) -> None:
    cert, key = pki.user("Enc", passphrase=b"typed")
    prompts: list[str] = []

    def terminal(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    make = Issuer.resolve(OPTIONS, prompt=terminal, cert=cert, key=key, cert_dir=pki.cert_dir).maker()
    assert prompts == []
    assert make().chain[1].subject.rfc4514_string() == "CN=Enc,O=Test Grid"
    assert prompts == [f"Enter pass phrase for {key}: "]


def test_passphrase_fd_is_read_instead_of_the_prompt(pki: Pki) -> None:
    cert, key = pki.user("EncFd", passphrase=b"from fd")
    read, write = os.pipe()
    os.write(write, b"from fd\n")
    os.close(write)
    try:
        issuer = Issuer.resolve(OPTIONS, prompt=_no_prompt, cert=cert, key=key, passphrase_fd=read)
        assert issuer.maker()().warnings == []
    finally:
        os.close(read)


def test_no_terminal_for_an_encrypted_key(pki: Pki) -> None:
    cert, key = pki.user("EncEof", passphrase=b"typed")

    def closed(prompt: str) -> str:
        raise EOFError

    with pytest.raises(CredentialError) as raised:
        Issuer.resolve(OPTIONS, prompt=closed, cert=cert, key=key).maker()()
    assert raised.value.message == f"{key}: private key is encrypted and no passphrase was given"
    assert raised.value.hint == "type it on a terminal or use --passphrase-fd"
