"""IDTOKENs csctl mints itself, checked against the key derivation HTCondor documents,
written out here with the standard library alone (RFC 5869 HKDF, RFC 7515 HS256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from csctl.context.tokens import (
    COMMAND_SCOPES,
    STARTD_SCOPES,
    SigningKey,
    derive_vm_key,
    mint,
    read_signing_key,
    scramble,
)
from csctl.errors import CredentialError, ExitCode

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POOL = SigningKey("POOL", b"pool-secret")


def hkdf_sha256(secret: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 with SHA-256, one block (32 bytes)."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode(token: str, key: SigningKey) -> tuple[dict, dict]:
    """Header and claims of a token whose HS256 signature checks out under HTCondor's
    key derivation (a POOL key's secret is used twice over)."""
    header, claims, signature = token.split(".")
    secret = key.secret * 2 if key.name == "POOL" else key.secret
    hmac_key = hkdf_sha256(secret, salt=b"htcondor", info=b"master jwt")
    expected = hmac.new(hmac_key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(unb64(signature), expected), "signature does not verify"
    return json.loads(unb64(header)), json.loads(unb64(claims))


def test_scramble_is_htcondors_xor_and_its_own_inverse():
    assert scramble(b"\0" * 6) == bytes.fromhex("deadbeefdead")
    assert scramble(b"") == b""
    for data in (b"pool-secret", bytes(range(256))):
        assert scramble(scramble(data)) == data
        assert scramble(data) != data


def test_a_minted_token_carries_the_claims_and_the_keys_name():
    token = mint(
        POOL,
        issuer="pool.test",
        subject="vm-b1@pool.test",
        scopes=STARTD_SCOPES,
        now=NOW,
        lifetime_seconds=3600,
        token_id="abc123",
    )
    header, claims = decode(token, POOL)
    assert header == {"alg": "HS256", "kid": "POOL", "typ": "JWT"}
    iat = int(NOW.timestamp())
    assert claims == {
        "iss": "pool.test",
        "sub": "vm-b1@pool.test",
        "iat": iat,
        "exp": iat + 3600,
        "jti": "abc123",
        "scope": "condor:/ADVERTISE_STARTD condor:/ADVERTISE_MASTER",
    }


def test_each_token_gets_its_own_id_and_verifies_only_under_its_key():
    kwargs = {
        "issuer": "p",
        "subject": "csctl@p",
        "scopes": COMMAND_SCOPES,
        "now": NOW,
        "lifetime_seconds": 60,
    }
    one, two = mint(POOL, **kwargs), mint(POOL, **kwargs)
    assert decode(one, POOL)[1]["jti"] != decode(two, POOL)[1]["jti"]
    # the same secret under another name is another key: the POOL key is used twice over
    with pytest.raises(AssertionError, match="signature does not verify"):
        decode(one, SigningKey("other", POOL.secret))
    vm_key = derive_vm_key(POOL, "b1")
    header, claims = decode(mint(vm_key, **kwargs), vm_key)
    assert header["kid"] == "b1" and claims["scope"] == "condor:/ADMINISTRATOR condor:/READ"


@pytest.mark.parametrize(
    ("scopes", "lifetime", "message"),
    [
        (STARTD_SCOPES, 0, "a token must expire: lifetime_seconds must be > 0"),
        ((), 60, "a token must be scoped: name at least one condor:/ authorization"),
    ],
)
def test_a_token_must_expire_and_be_scoped(scopes, lifetime, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        mint(POOL, issuer="p", subject="s@p", scopes=scopes, now=NOW, lifetime_seconds=lifetime)


def test_derive_vm_key_is_deterministic_and_distinct_per_batch_and_pool():
    key = derive_vm_key(POOL, "fg-0123abcd")
    assert key == derive_vm_key(SigningKey("POOL", b"pool-secret"), "fg-0123abcd")
    assert key.name == "fg-0123abcd"
    # hex text: HTCondor stops reading a password at a NUL byte
    assert len(key.secret) == 64 and bytes.fromhex(key.secret.decode("ascii"))
    assert (
        key.secret
        == hmac.new(b"pool-secret", b"csctl-vm-key:fg-0123abcd", hashlib.sha256).hexdigest().encode()
    )
    others = {
        derive_vm_key(POOL, "fg-0123abce").secret,
        derive_vm_key(SigningKey("POOL", b"x"), "fg-0123abcd").secret,
    }
    assert key.secret not in others and len(others) == 2
    assert POOL.secret not in key.secret


def write_key(tmp_path, raw: bytes, mode: int = 0o600):
    path = tmp_path / "POOL"
    path.write_bytes(raw)
    path.chmod(mode)
    return path


def test_read_signing_key_unscrambles_up_to_the_first_nul(tmp_path):
    path = write_key(tmp_path, scramble(b"pool-secret\0padding"))
    assert read_signing_key(path) == SigningKey("POOL", b"pool-secret")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o601, 0o610])
def test_read_signing_key_refuses_a_key_others_can_reach(tmp_path, mode):
    path = write_key(tmp_path, scramble(b"pool-secret"), mode)
    with pytest.raises(CredentialError) as info:
        read_signing_key(path)
    assert info.value.message == f"{path}: signing key is accessible by group or others (mode {mode:04o})"
    assert info.value.hint == f"chmod 600 {path}"
    assert info.value.exit_code == ExitCode.CREDENTIAL


def test_read_signing_key_missing_or_empty(tmp_path):
    with pytest.raises(CredentialError) as info:
        read_signing_key(tmp_path / "none")
    assert info.value.message == f"{tmp_path / 'none'}: cannot read signing key: No such file or directory"
    path = write_key(tmp_path, scramble(b"\0rest"))
    with pytest.raises(CredentialError) as info:
        read_signing_key(path)
    assert info.value.message == f"{path}: signing key is empty"
