"""Make proxies: in one step (make_proxy) or delegated, key pair on the receiving side.

Delegation: the receiver calls create_request and keeps the key; the issuer calls
sign_request on the CSR and returns only certificates; the receiver calls
assemble_proxy with them and its kept key. No private key crosses the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from csctl.errors import CredentialError
from csctl.proxy.build import MIN_BITS, new_key, sign_proxy
from csctl.proxy.chain import cert_type, public_der, verify_chain
from csctl.proxy.model import (
    DEFAULT_BITS,
    Credential,
    IssueOptions,
    NewProxy,
    ProxyRequest,
    SignedProxy,
)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def make_proxy(
    issuer: Credential,
    options: IssueOptions | None = None,
    *,
    bits: int = DEFAULT_BITS,
    trust_dir: Path | None = None,
    now: datetime | None = None,
) -> NewProxy:
    """A new proxy of ``issuer`` (a user certificate or itself a proxy), with a fresh key.

    The issuer's chain is verified first (against ``trust_dir`` when given); a
    CredentialError is raised before anything is made. Nothing is written.
    """
    now = _now(now)
    verify_chain(issuer.chain, now, trust_dir)
    key = new_key(bits)
    signed = sign_proxy(issuer, key.public_key(), options or IssueOptions(), now)
    verify_chain(signed.chain, now, None)
    return NewProxy(chain=signed.chain, key=key, warnings=signed.warnings)


def create_request(bits: int = DEFAULT_BITS) -> ProxyRequest:
    """The receiver's step 1: a fresh key and a CSR for it, signed by it (proof of possession)."""
    key = new_key(bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return ProxyRequest(key=key, csr=csr)


def load_request(data: bytes) -> rsa.RSAPublicKey:
    """The public key of a proxy CSR, refused unless self-signed, RSA and >= 2048 bits."""
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CredentialError("certificate request: not a PEM CSR") from exc
    if not csr.is_signature_valid:
        raise CredentialError("certificate request: its signature does not verify")
    key = csr.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_BITS:
        raise CredentialError(f"certificate request: key must be RSA of {MIN_BITS} bits or more")
    return key


def sign_request(
    csr_pem: bytes,
    issuer: Credential,
    options: IssueOptions | None = None,
    *,
    trust_dir: Path | None = None,
    now: datetime | None = None,
) -> SignedProxy:
    """The issuer's step: sign a receiver's CSR into a proxy certificate plus chain."""
    now = _now(now)
    public_key = load_request(csr_pem)
    verify_chain(issuer.chain, now, trust_dir)
    signed = sign_proxy(issuer, public_key, options or IssueOptions(), now)
    verify_chain(signed.chain, now, None)
    return signed


def assemble_proxy(
    certs_pem: bytes,
    key: PrivateKeyTypes,
    *,
    trust_dir: Path | None = None,
    now: datetime | None = None,
) -> NewProxy:
    """The receiver's step 2: the returned certificates and the kept key, verified."""
    try:
        chain = x509.load_pem_x509_certificates(certs_pem)
    except ValueError as exc:
        raise CredentialError("signed proxy: no PEM certificate in it") from exc
    if not cert_type(chain[0]).is_proxy:
        raise CredentialError("signed proxy: the first certificate is not a proxy")
    if public_der(chain[0]) != _public_der(key):
        raise CredentialError("signed proxy: it is not for the kept request key")
    verify_chain(chain, _now(now), trust_dir)
    return NewProxy(chain=chain, key=key)


def _public_der(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
