"""A throw-away grid PKI for the proxy tests, and the oracles that judge proxies.

Imported by the test modules (not a conftest) so the tests run with --noconftest too.
The CA directory holds each CA under both OpenSSL hashes: globus reads the current
one, voms-clients-java (canl) the old MD5 one; each has a signing_policy file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csctl.proxy import Credential, IssueOptions, proxy_file_bytes, write_private
from csctl.proxy.build import new_key, sign_proxy
from csctl.proxy.der import encode_proxy_cert_info
from csctl.proxy.model import PPL_INHERIT_ALL, PROXY_CERT_INFO

ORACLE_TOOLS = ("openssl", "grid-cert-diagnostics", "grid-proxy-init", "voms-proxy-init3")
needs_oracles = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ORACLE_TOOLS),
    reason="needs globus-proxy-utils, globus-gsi-cert-utils-progs and voms-clients-java",
)


def name(*cns: str) -> x509.Name:
    """``/O=Test Grid/CN=...`` names."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Grid")]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in cns])


def now() -> datetime:
    return datetime.now(UTC)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Pki:
    """A CA (in a grid trust directory) that issues user certificates into ``root``."""

    root: Path
    ca_key: rsa.RSAPrivateKey
    ca: x509.Certificate

    @property
    def cert_dir(self) -> Path:
        return self.root / "certificates"

    def user(
        self,
        cn: str = "Alice",
        *,
        valid: tuple[timedelta, timedelta] = (timedelta(hours=-1), timedelta(days=10)),
        key_usage: x509.KeyUsage | None = None,
        eku: bool = False,
        passphrase: bytes | None = None,
    ) -> tuple[Path, Path]:
        """Write ``<cn>cert.pem`` and ``<cn>key.pem`` (mode 0400) and return their paths."""
        key = _key()
        usage = key_usage or x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() + valid[0])
            .not_valid_after(now() + valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
        )
        if eku:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path, key_path = self.root / f"{cn}cert.pem", self.root / f"{cn}key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
        )
        write_private(key_path, pem)
        key_path.chmod(0o400)
        return cert_path, key_path


def make_pki(root: Path) -> Pki:
    """A fresh CA valid for 30 days, installed in ``root/certificates``."""
    key = _key()
    subject = name("Test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now() - timedelta(days=1))
        .not_valid_after(now() + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pki = Pki(root=root, ca_key=key, ca=ca)
    _install_ca(pki)
    return pki


def _install_ca(pki: Pki) -> None:
    pki.cert_dir.mkdir(parents=True)
    pem = pki.ca.public_bytes(serialization.Encoding.PEM)
    ca_file = pki.root / "ca.pem"
    ca_file.write_bytes(pem)
    policy = (
        "access_id_CA X509 '/O=Test Grid/CN=Test CA'\n"
        "pos_rights globus CA:sign\n"
        "cond_subjects globus '\"/O=Test Grid/*\"'\n"
    )
    for flag in ("-subject_hash", "-subject_hash_old"):
        digest = subprocess.run(
            ["openssl", "x509", flag, "-noout", "-in", str(ca_file)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (pki.cert_dir / f"{digest}.0").write_bytes(pem)
        (pki.cert_dir / f"{digest}.signing_policy").write_text(policy)


# Hand-made bad chains: each is a proxy file (cert, key, chain) the tools must refuse.


def write_proxy_file(path: Path, chain: list[x509.Certificate], key: rsa.RSAPrivateKey) -> Path:
    write_private(path, proxy_file_bytes(chain, key))
    return path


def forged_signature(issuer: Credential, path: Path) -> Path:
    """A full proxy whose signature has one byte flipped."""
    key = new_key(2048)
    signed = sign_proxy(issuer, key.public_key(), IssueOptions(), now())
    der = bytearray(signed.cert.public_bytes(serialization.Encoding.DER))
    der[-10] ^= 0xFF
    forged = x509.load_der_x509_certificate(bytes(der))
    return write_proxy_file(path, [forged, *issuer.chain], key)


def non_critical_pci(issuer: Credential, path: Path) -> Path:
    """A correctly signed full proxy whose proxyCertInfo is not marked critical."""
    key = new_key(2048)
    good = sign_proxy(issuer, key.public_key(), IssueOptions(), now()).cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(good.subject)
        .issuer_name(good.issuer)
        .public_key(key.public_key())
        .serial_number(good.serial_number)
        .not_valid_before(good.not_valid_before_utc)
        .not_valid_after(good.not_valid_after_utc)
    )
    for ext in good.extensions:
        if ext.oid != PROXY_CERT_INFO:
            builder = builder.add_extension(ext.value, critical=ext.critical)
    pci = encode_proxy_cert_info(PPL_INHERIT_ALL.dotted_string, None)
    builder = builder.add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, pci), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return write_proxy_file(path, [cert, *issuer.chain], key)


def full_under_limited(issuer: Credential, path: Path) -> Path:
    """A correctly signed full proxy whose issuer is a limited proxy."""
    limited_key = new_key(2048)
    limited = sign_proxy(issuer, limited_key.public_key(), IssueOptions(limited=True), now())
    middle = Credential(chain=limited.chain, key=limited_key, source="limited")
    key = new_key(2048)
    # sign_proxy refuses this (check_may_issue), so call it with limited=True and
    # swap the extension: build the full proxy by hand from the limited proxy's parts.
    template = sign_proxy(middle, key.public_key(), IssueOptions(limited=True), now()).cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(key.public_key())
        .serial_number(template.serial_number)
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    for ext in template.extensions:
        if ext.oid != PROXY_CERT_INFO:
            builder = builder.add_extension(ext.value, critical=ext.critical)
    pci = encode_proxy_cert_info(PPL_INHERIT_ALL.dotted_string, None)
    builder = builder.add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, pci), critical=True)
    cert = builder.sign(limited_key, hashes.SHA256())
    return write_proxy_file(path, [cert, *limited.chain], key)


# The oracles. Each returns (accepted, what the tool printed).


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def openssl_verify(proxy: Path, cert_dir: Path) -> tuple[bool, str]:
    """``openssl verify -allow_proxy_certs``, the proxy file as its own untrusted chain."""
    done = _run(
        [
            "openssl",
            "verify",
            "-allow_proxy_certs",
            "-CApath",
            str(cert_dir),
            "-untrusted",
            str(proxy),
            str(proxy),
        ],
        {},
    )
    return done.returncode == 0 and done.stdout.strip().endswith(": OK"), done.stdout + done.stderr


def grid_cert_diagnostics(proxy: Path, cert_dir: Path) -> tuple[bool, str]:
    """``grid-cert-diagnostics -c``: it exits 0 either way, so read its trust-chain line."""
    done = _run(["grid-cert-diagnostics", "-c", str(proxy)], {"X509_CERT_DIR": str(cert_dir)})
    out = done.stdout + done.stderr
    return "Checking certificate trust chain... ok" in out, out


def grid_proxy_init_verify(proxy: Path, cert_dir: Path, limited: bool) -> tuple[bool, str]:
    """``grid-proxy-init -verify``: verify the chain, then sign a new proxy with it."""
    out = proxy.with_name(proxy.name + ".gpi")
    argv = ["grid-proxy-init", "-verify", "-q", "-cert", str(proxy), "-key", str(proxy), "-out", str(out)]
    done = _run(argv + (["-limited"] if limited else []), {"X509_CERT_DIR": str(cert_dir)})
    return done.returncode == 0, done.stdout + done.stderr


def voms_proxy_init_verify(proxy: Path, cert_dir: Path) -> tuple[bool, str]:
    """``voms-proxy-init3 --noregen --verify``: canl validates the proxy, then signs with it."""
    out = proxy.with_name(proxy.name + ".voms")
    env = {"X509_CERT_DIR": str(cert_dir), "X509_USER_PROXY": str(proxy)}
    done = _run(["voms-proxy-init3", "--noregen", "--verify", "-q", "--out", str(out)], env)
    return done.returncode == 0, done.stdout + done.stderr


def all_oracles(proxy: Path, cert_dir: Path, limited: bool = False) -> dict[str, tuple[bool, str]]:
    """Every oracle's verdict on ``proxy``."""
    return {
        "openssl verify": openssl_verify(proxy, cert_dir),
        "grid-cert-diagnostics": grid_cert_diagnostics(proxy, cert_dir),
        "grid-proxy-init -verify": grid_proxy_init_verify(proxy, cert_dir, limited),
        "voms-proxy-init3 --verify": voms_proxy_init_verify(proxy, cert_dir),
    }


# Fixtures: import them into a test module to use them (no conftest needed).


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and its trust directory, shared by one test module."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def alice(pki: Pki) -> tuple[Path, Path]:
    """Alice's user certificate and (unencrypted, 0400) key files."""
    return pki.user("Alice")
