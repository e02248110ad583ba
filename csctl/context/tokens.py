"""HTCondor IDTOKENs minted by csctl itself, so each VM joins under its own identity.

An IDTOKEN is an HS256 JWT. Its key is derived from a signing key file in
``passwords.d``: the file is XOR-scrambled with DE AD BE EF; the POOL key's
unscrambled bytes are used twice over; the HMAC key is HKDF-SHA256 of that with salt
"htcondor" and info "master jwt". Claims: iss (trust domain), sub, iat, exp, jti,
scope; header kid names the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import cycle
from pathlib import Path

from csctl.errors import CredentialError
from csctl.safefile import FileRefused, read_regular_file

SCRAMBLE = b"\xde\xad\xbe\xef"
POOL_KEY_NAME = "POOL"
# what a VM's daemons need and nothing more: advertise the startd and its master
STARTD_SCOPES = ("condor:/ADVERTISE_STARTD", "condor:/ADVERTISE_MASTER")
# what csctl needs to command a VM (drain it, shut it down)
COMMAND_SCOPES = ("condor:/ADMINISTRATOR", "condor:/READ")


@dataclass(frozen=True)
class SigningKey:
    """A signing key as HTCondor uses it: its name (the token's kid) and raw bytes."""

    name: str
    secret: bytes


def scramble(data: bytes) -> bytes:
    """HTCondor's password-file scrambling (its own inverse)."""
    return bytes(b ^ k for b, k in zip(data, cycle(SCRAMBLE), strict=False))


MAX_KEY_BYTES = 64 * 1024  # HTCondor's keys are tens of bytes; bounds what a wrong path costs


def _check_key_file(path: Path) -> Callable[[os.stat_result], None]:
    """The checks HTCondor's read_secure_file makes: owned by this user (or root), and no
    access for group or others."""

    def check(status: os.stat_result) -> None:
        if status.st_uid not in (os.geteuid(), 0):
            raise CredentialError(
                f"{path}: signing key is owned by uid {status.st_uid}, not by this user or root",
                hint=f"chown {os.geteuid()} {path}",
            )
        if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialError(
                f"{path}: signing key is accessible by group or others "
                f"(mode {stat.S_IMODE(status.st_mode):04o})",
                hint=f"chmod 600 {path}",
            )

    return check


def read_signing_key(path: Path) -> SigningKey:
    """Read a ``passwords.d`` key file; refuse one that is unsafe to trust.

    Refused: a symbolic link (the token's kid is the file's name, and HTCondor looks the
    key up by that name in its own passwords.d without resolving links, so a link's name
    and its target's could disagree), anything but a regular file (a FIFO would block), a
    file larger than MAX_KEY_BYTES, one owned by another user than this one or root, and
    one that group or others can access.
    """
    try:
        raw = read_regular_file(path, MAX_KEY_BYTES, follow_symlinks=False, check=_check_key_file(path))
    except FileRefused as exc:
        hint = "give pool.signing_key the key file itself (passwords.d/POOL)"
        if "symbolic link" in exc.reason:
            hint = f"make {path} the key file itself, not a link: HTCondor finds the key by that name"
        raise CredentialError(f"{path}: signing key {exc.reason}", hint=hint) from None
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read signing key: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path; the configuration refuses it already
        raise CredentialError(f"{path!r}: cannot read signing key: not a usable path") from None
    secret = scramble(raw).split(b"\0", 1)[0]
    if not secret:
        raise CredentialError(f"{path}: signing key is empty")
    return SigningKey(name=path.name, secret=secret)


def _hmac_key(key: SigningKey) -> bytes:
    secret = key.secret * 2 if key.name == POOL_KEY_NAME else key.secret
    return _hkdf_sha256(secret, salt=b"htcondor", info=b"master jwt", length=32)


def _hkdf_sha256(secret: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(
    key: SigningKey,
    *,
    issuer: str,
    subject: str,
    scopes: Sequence[str],
    now: datetime,
    lifetime_seconds: int,
    token_id: str | None = None,
) -> str:
    """An IDTOKEN for ``subject`` (``user@domain``) limited to ``scopes``, expiring."""
    if lifetime_seconds <= 0:
        raise ValueError("a token must expire: lifetime_seconds must be > 0")
    header = {"alg": "HS256", "kid": key.name, "typ": "JWT"}
    iat = int(now.timestamp())
    if not scopes:
        raise ValueError("a token must be scoped: name at least one condor:/ authorization")
    claims = {
        "iss": issuer,
        "sub": subject,
        "iat": iat,
        "exp": iat + lifetime_seconds,
        "jti": token_id or uuid.uuid4().hex,
        "scope": " ".join(scopes),
    }
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(_hmac_key(key), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def derive_vm_key(pool_key: SigningKey, vm_id: str) -> SigningKey:
    """The VM's own signing key, derived from the pool key and its id.

    The VM trusts tokens signed with it (csctl uses them to command that VM), so
    csctl needs no per-VM storage, and one VM's key reveals neither the pool key nor
    another VM's. Hex text, because HTCondor stops reading a password at a NUL byte.
    """
    digest = hmac.new(pool_key.secret, b"csctl-vm-key:" + vm_id.encode(), hashlib.sha256)
    return SigningKey(name=vm_id, secret=digest.hexdigest().encode("ascii"))


def batch_secrets(pool_key: SigningKey, batch_id: str) -> list[str]:
    """The batch's signing key as the VMs hold it, in every form its payload carries it
    (hex text, and base64 of the scrambled file): what a console or a job's output must
    never show."""
    secret = derive_vm_key(pool_key, batch_id).secret
    return [secret.decode(), base64.b64encode(scramble(secret)).decode()]
