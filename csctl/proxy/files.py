"""Write credential files atomically, never readable by anyone but the owner."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from csctl.errors import CredentialError


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 from creation on.

    The bytes go to a fresh temporary file in the same directory (O_EXCL, 0600,
    fsync'd), which is then renamed over ``path``: readers see the old file or the
    whole new one, and a symlink at ``path`` is replaced, never followed.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CredentialError(f"{path}: cannot create: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # the umask may only have narrowed it
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise CredentialError(f"{path}: cannot write: {exc.strerror}") from exc


def pem_certificates(chain: list[x509.Certificate]) -> bytes:
    """The certificates as concatenated PEM, in order."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)


def pem_private_key(key: PrivateKeyTypes) -> bytes:
    """An unencrypted PKCS#8 PEM key, the form grid-proxy-init writes into proxies."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def proxy_file_bytes(chain: list[x509.Certificate], key: PrivateKeyTypes) -> bytes:
    """A proxy file: the proxy certificate, its key, then the issuer chain."""
    return pem_certificates(chain[:1]) + pem_private_key(key) + pem_certificates(chain[1:])
