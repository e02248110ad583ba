"""Write credential files atomically, never readable by anyone but the owner."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from csctl.errors import CredentialError, InputError


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 from creation on.

    The bytes go to a fresh temporary file in the same directory (O_EXCL, 0600,
    fsync'd), which is then renamed over ``path``: readers see the old file or the
    whole new one, and a symlink at ``path`` is replaced, never followed.
    """
    if not path.name or path.name in (".", ".."):
        raise InputError(f"{str(path)!r}: not a file name to write")
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
    except BaseException as exc:  # even on ^C: no stray copy of a private key stays behind
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise CredentialError(f"{path}: cannot write: {exc.strerror}") from exc
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """fsync the directory so the rename itself survives a crash (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same resolved path (symlinks followed,
    the file may not exist yet) or the same inode (a hard link)."""
    try:
        if a.resolve() == b.resolve():
            return True
        sa, sb = a.stat(), b.stat()
    except (OSError, RuntimeError):  # missing file, or a symlink loop
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def refuse_overwrite(outputs: Mapping[str, Path | None], protected: Mapping[str, Path]) -> None:
    """Raise InputError if an output (option name -> path) names a protected file.

    Called before anything is written or asked: the user's certificate and long-term key
    must never be replaced by a proxy, whatever link or spelling leads to them.
    """
    for option, path in outputs.items():
        for owner, kept in protected.items():
            if path is not None and same_file(path, kept):
                raise InputError(f"{option} {path}: it is the {owner} file, which csctl never overwrites")


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
