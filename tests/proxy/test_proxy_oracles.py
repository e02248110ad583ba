"""Proxies csctl makes pass every independent verifier; chains they refuse, csctl refuses.

Oracles (Debian 12): openssl verify -allow_proxy_certs, grid-cert-diagnostics,
grid-proxy-init -verify, voms-proxy-init3 --noregen --verify.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from csctl.errors import CredentialError
from csctl.proxy import (
    Credential,
    IssueOptions,
    ProxyType,
    assemble_proxy,
    create_request,
    load_credential,
    make_proxy,
    pem_certificates,
    proxy_file_bytes,
    proxy_info,
    sign_request,
    write_private,
)
from tests.proxy.pki import (  # noqa: F401  (fixtures)
    Pki,
    alice,
    all_oracles,
    forged_signature,
    full_under_limited,
    needs_oracles,
    non_critical_pci,
    pki,
)

pytestmark = needs_oracles


def _write(path: Path, made: Credential | object) -> Path:
    write_private(path, proxy_file_bytes(made.chain, made.key))  # type: ignore[attr-defined]
    return path


def _assert_all_accept(proxy: Path, pki: Pki, limited: bool = False) -> None:
    verdicts = all_oracles(proxy, pki.cert_dir, limited)
    refused = {tool: out for tool, (ok, out) in verdicts.items() if not ok}
    assert refused == {}


def test_full_proxy_passes_every_oracle(pki: Pki, alice: tuple[Path, Path]) -> None:
    made = make_proxy(load_credential(*alice), trust_dir=pki.cert_dir)
    _assert_all_accept(_write(pki.root / "full.pem", made), pki)


def test_limited_proxy_passes_every_oracle(pki: Pki, alice: tuple[Path, Path]) -> None:
    made = make_proxy(load_credential(*alice), IssueOptions(limited=True))
    proxy = _write(pki.root / "limited.pem", made)
    _assert_all_accept(proxy, pki, limited=True)
    assert proxy_info(proxy).type == ProxyType.LIMITED


def test_proxy_of_proxy_passes_every_oracle(pki: Pki, alice: tuple[Path, Path]) -> None:
    first = _write(pki.root / "first.pem", make_proxy(load_credential(*alice)))
    second = make_proxy(load_credential(first, first), trust_dir=pki.cert_dir)
    proxy = _write(pki.root / "second.pem", second)
    _assert_all_accept(proxy, pki)
    assert len(proxy_info(proxy).chain) == 3


def test_limited_proxy_of_limited_proxy_passes_every_oracle(pki: Pki, alice: tuple[Path, Path]) -> None:
    first = _write(pki.root / "lim1.pem", make_proxy(load_credential(*alice), IssueOptions(limited=True)))
    second = make_proxy(load_credential(first, first), IssueOptions(limited=True))
    _assert_all_accept(_write(pki.root / "lim2.pem", second), pki, limited=True)


def test_delegated_proxy_passes_every_oracle(pki: Pki, alice: tuple[Path, Path]) -> None:
    request = create_request()
    csr = request.csr.public_bytes(serialization.Encoding.PEM)
    signed = sign_request(csr, load_credential(*alice), trust_dir=pki.cert_dir)
    made = assemble_proxy(pem_certificates(signed.chain), request.key, trust_dir=pki.cert_dir)
    _assert_all_accept(_write(pki.root / "delegated.pem", made), pki)


def _extensions(cert: x509.Certificate) -> list[tuple[str, bool, bytes]]:
    def raw(value: x509.ExtensionType) -> bytes:
        if isinstance(value, x509.UnrecognizedExtension):
            return value.value
        return value.public_bytes()

    return [(e.oid.dotted_string, e.critical, raw(e.value)) for e in cert.extensions]


def _grid_proxy_init(pki: Pki, cert: Path, key: Path, out: Path, *flags: str) -> x509.Certificate:
    subprocess.run(
        ["grid-proxy-init", "-q", "-cert", str(cert), "-key", str(key), "-out", str(out), *flags],
        check=True,
        capture_output=True,
        env={"X509_CERT_DIR": str(pki.cert_dir), "PATH": "/usr/bin:/bin"},
    )
    return x509.load_pem_x509_certificates(out.read_bytes())[0]


@pytest.mark.parametrize("limited", [False, True])
def test_certificate_is_what_grid_proxy_init_writes(pki: Pki, limited: bool) -> None:
    usage = x509.KeyUsage(True, True, True, True, False, False, False, False, False)
    cert, key = pki.user(f"Carol{limited}", key_usage=usage, eku=True)
    flags = ["-limited"] if limited else []
    theirs = _grid_proxy_init(pki, cert, key, pki.root / f"gpi{limited}.pem", *flags)
    ours = make_proxy(load_credential(cert, key), IssueOptions(limited=limited)).cert
    assert _extensions(ours) == _extensions(theirs)
    assert ours.subject.rdns[:-1] == theirs.subject.rdns[:-1]
    assert ours.issuer == theirs.issuer
    assert ours.signature_hash_algorithm.name == theirs.signature_hash_algorithm.name  # type: ignore[union-attr]
    ours_life = ours.not_valid_after_utc - ours.not_valid_before_utc
    theirs_life = theirs.not_valid_after_utc - theirs.not_valid_before_utc
    assert abs(ours_life - theirs_life) <= timedelta(seconds=60)


def test_serial_and_cn_follow_globus(pki: Pki, alice: tuple[Path, Path]) -> None:
    theirs = _grid_proxy_init(pki, *alice, pki.root / "gpi-serial.pem")
    ours = make_proxy(load_credential(*alice)).cert
    for cert in (ours, theirs):
        from csctl.proxy.build import proxy_serial

        assert cert.serial_number == proxy_serial(cert.public_key())  # type: ignore[arg-type]
        assert cert.subject.rdns[-1].rfc4514_string() == f"CN={cert.serial_number}"


# Forged chains: (maker, {tool: accepts?}). The tools disagree; csctl refuses all.
FORGED: dict[str, tuple[Callable[[Credential, Path], Path], dict[str, bool], str]] = {
    "forged signature": (
        forged_signature,
        {
            "openssl verify": False,
            "grid-cert-diagnostics": False,
            "grid-proxy-init -verify": False,
            "voms-proxy-init3 --verify": False,
        },
        "signature does not verify with /O=Test Grid/CN=Alice's key",
    ),
    "non-critical proxyCertInfo": (
        non_critical_pci,
        {
            "openssl verify": True,
            "grid-cert-diagnostics": False,
            "grid-proxy-init -verify": False,
            "voms-proxy-init3 --verify": True,
        },
        "proxyCertInfo extension is not marked critical",
    ),
    "full proxy under a limited one": (
        full_under_limited,
        {
            "openssl verify": True,
            "grid-cert-diagnostics": False,
            "grid-proxy-init -verify": False,
            "voms-proxy-init3 --verify": False,
        },
        "full proxy under a limited proxy",
    ),
}


@pytest.mark.parametrize("case", FORGED)
def test_oracles_on_forged_chains(pki: Pki, alice: tuple[Path, Path], case: str) -> None:
    maker, expected, _message = FORGED[case]
    # no spaces: voms-proxy-init3 runs 'ls -al <file>' unquoted and fails on them
    proxy = maker(load_credential(*alice), pki.root / f"{case.replace(' ', '_')}.pem")
    verdicts = all_oracles(proxy, pki.cert_dir)
    assert {tool: ok for tool, (ok, _out) in verdicts.items()} == expected


@pytest.mark.parametrize("case", FORGED)
def test_csctl_refuses_forged_chains(pki: Pki, alice: tuple[Path, Path], case: str) -> None:
    maker, _expected, message = FORGED[case]
    proxy = maker(load_credential(*alice), pki.root / f"refuse_{case.replace(' ', '_')}.pem")
    with pytest.raises(CredentialError) as raised:
        make_proxy(load_credential(proxy, proxy), IssueOptions(limited=True))
    assert message in raised.value.message
    info = proxy_info(proxy)
    assert info.problem is not None and message in info.problem
    key = serialization.load_pem_private_key(proxy.read_bytes(), None)
    with pytest.raises(CredentialError, match="signed proxy|" + message.replace("'", ".")):
        assemble_proxy(proxy.read_bytes(), key)
