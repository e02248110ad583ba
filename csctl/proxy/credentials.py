"""Load an issuing credential: a certificate (chain) and its private key, safely."""

from __future__ import annotations

import fcntl
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
MAX_FILE_BYTES = 1024 * 1024
MAX_PASSPHRASE_BYTES = 1024
# Longer lifetimes and thresholds are refused as typos: no grid certificate lives a century,
# and the bound keeps now + lifetime far inside what datetime can hold.
MAX_HOURS = 100 * 365 * 24


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
    """The bytes of ``path``, or a CredentialError naming it.

    At most MAX_FILE_BYTES are read: a certificate, key or request is a few kilobytes,
    and ``/dev/zero`` or a huge file named by mistake must not exhaust memory.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise CredentialError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB, not a credential file")
    return data


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
    secret = passphrase()
    if not secret:  # cryptography raises TypeError for b"": say what happened instead
        raise CredentialError(f"{path}: private key is encrypted and the passphrase given is empty")
    try:
        return serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
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
    """``H:M`` (or ``H``) as grid-proxy-init's -valid takes it: more than 0:00, at most MAX_HOURS."""
    lifetime = parse_hours_minutes("--valid", text)
    if not lifetime:
        raise InputError("--valid: a proxy needs a lifetime of at least 0:01")
    return lifetime


def parse_hours_minutes(option: str, text: str) -> timedelta:
    """``H:M`` (or ``H``) given to ``option``, at most MAX_HOURS; else an InputError naming it."""
    hours, _, minutes = text.partition(":")
    minutes = minutes or "0"
    digits = hours + minutes
    if (
        not (digits.isascii() and hours.isdigit() and minutes.isdigit())
        or len(minutes) > 2
        or int(minutes) > 59
    ):
        raise InputError(f"{option}: expected H:M such as 12:00, got {text!r}")
    return bounded(option, whole(hours) * 3600 + int(minutes) * 60, text)


def whole(digits: str) -> int:
    """The number written in ASCII ``digits``; past 15 digits, any number above MAX_HOURS
    will do (and int() refuses strings of thousands of digits)."""
    return int(digits) if len(digits) <= 15 else MAX_HOURS * 3600 + 1


def bounded(option: str, seconds: int, text: str) -> timedelta:
    """``seconds`` as a timedelta, refused (InputError naming ``option``) beyond MAX_HOURS."""
    if seconds > MAX_HOURS * 3600:
        raise InputError(f"{option}: at most {MAX_HOURS} hours (100 years), got {text!r}")
    return timedelta(seconds=seconds)


def parse_fd(text: str) -> int:
    """The number given to ``--passphrase-fd``: a non-negative integer."""
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InputError(f"--passphrase-fd: expected a file descriptor number such as 3, got {text!r}")
    return int(text)


def passphrase_from_fd(fd: int) -> Passphrase:
    """A passphrase source reading one line from file descriptor ``fd`` (left open).

    The descriptor is checked now (open, readable, not a directory), so a bad one is
    refused before anything is done. The read stops at the first newline, end of file or
    MAX_PASSPHRASE_BYTES: a file of megabytes is refused, not taken as a passphrase.
    Raises InputError (exit 2) for every problem of the descriptor itself.
    """
    _check_fd(fd)

    def read() -> bytes:
        data = b""
        try:  # one byte at a time: what follows the line stays unread for its owner
            while not data.endswith(b"\n") and len(data) <= MAX_PASSPHRASE_BYTES:
                chunk = os.read(fd, 1)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise InputError(f"--passphrase-fd {fd}: cannot read: {exc.strerror}") from exc
        if not data:
            raise InputError(f"--passphrase-fd {fd}: end of file before any passphrase")
        line = data.rstrip(b"\r\n")
        if len(line) > MAX_PASSPHRASE_BYTES:
            raise InputError(f"--passphrase-fd {fd}: passphrase longer than {MAX_PASSPHRASE_BYTES} bytes")
        return line

    return read


def _check_fd(fd: int) -> None:
    try:
        mode = os.fstat(fd).st_mode
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise InputError(f"--passphrase-fd {fd}: not an open file descriptor ({exc.strerror})") from exc
    if stat.S_ISDIR(mode):
        raise InputError(f"--passphrase-fd {fd}: is a directory, not a passphrase")
    if flags & os.O_ACCMODE == os.O_WRONLY:
        raise InputError(f"--passphrase-fd {fd}: not open for reading")
