"""Load an issuing credential: a certificate (chain) and its private key, safely."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from csctl.errors import CredentialError, InputError
from csctl.proxy.chain import public_der
from csctl.proxy.model import Credential

Passphrase = Callable[[], bytes]


def default_cert_paths() -> tuple[Path, Path]:
    """($X509_USER_CERT or ~/.globus/usercert.pem, $X509_USER_KEY or ~/.globus/userkey.pem)."""
    globus = Path.home() / ".globus"
    cert = os.environ.get("X509_USER_CERT") or str(globus / "usercert.pem")
    key = os.environ.get("X509_USER_KEY") or str(globus / "userkey.pem")
    return Path(cert), Path(key)


def default_proxy_path() -> Path:
    """$X509_USER_PROXY, else /tmp/x509up_u<uid>, as the grid tools use."""
    return Path(os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}")


def read_file(path: Path) -> bytes:
    """The bytes of ``path``, or a CredentialError naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read: {exc.strerror}") from exc


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every PEM certificate in ``path``, in file order (leaf first for a proxy file)."""
    try:
        certs = x509.load_pem_x509_certificates(read_file(path))
    except ValueError as exc:
        raise CredentialError(f"{path}: no PEM certificate in the file") from exc
    return certs


def check_key_mode(path: Path) -> None:
    """Refuse a private key file that group or others may read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read: {exc.strerror}") from exc
    if mode & 0o077:
        raise CredentialError(
            f"{path}: private key file is accessible by group or others (mode {mode:04o})",
            hint=f"chmod 600 {path}",
        )


def load_private_key(path: Path, passphrase: Passphrase | None) -> PrivateKeyTypes:
    """The private key in ``path``, asking ``passphrase()`` only if the key is encrypted."""
    check_key_mode(path)
    data = read_file(path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        pass  # encrypted: needs the passphrase
    except ValueError as exc:
        raise CredentialError(f"{path}: no usable PEM private key in the file") from exc
    if passphrase is None:
        raise CredentialError(f"{path}: private key is encrypted and no passphrase was given")
    try:
        return serialization.load_pem_private_key(data, password=passphrase())
    except ValueError as exc:
        raise CredentialError(f"{path}: wrong passphrase for the private key") from exc


def load_credential(cert_path: Path, key_path: Path, passphrase: Passphrase | None = None) -> Credential:
    """Load and pair a certificate chain with its key; refuse keys that do not match.

    ``cert_path`` may be a proxy file (cert, key, chain) to make a proxy of a proxy;
    ``passphrase`` is called once, only for an encrypted key.
    """
    chain = load_certificates(cert_path)
    key = load_private_key(key_path, passphrase)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CredentialError(f"{key_path}: only RSA and EC keys can sign proxies")
    if public_der(chain[0]) != _key_der(key):
        raise CredentialError(f"{key_path}: private key does not match the certificate in {cert_path}")
    return Credential(chain=chain, key=key, source=str(cert_path))


def _key_der(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_lifetime(text: str) -> timedelta:
    """``H:M`` (or ``H``) as grid-proxy-init's -valid takes it."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and (minutes or "0").isdigit()) or int(minutes or 0) > 59:
        raise InputError(f"--valid: expected H:M such as 12:00, got {text!r}")
    return timedelta(hours=int(hours), minutes=int(minutes or 0))


def passphrase_from_fd(fd: int) -> Passphrase:
    """A passphrase source reading one line from file descriptor ``fd`` (left open)."""

    def read() -> bytes:
        data = b""
        while not data.endswith(b"\n") and (chunk := os.read(fd, 1)):
            data += chunk
        return data.rstrip(b"\r\n")

    return read
