"""Classify certificates and verify proxy chains by RFC 3820's rules.

The checks are the union of what openssl, globus and voms-clients-java refuse:
signatures, validity periods, a critical proxyCertInfo, proxy subjects that
extend their issuer's by one CN, path lengths, and no full proxy under a limited one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from csctl.errors import CredentialError
from csctl.proxy.der import DerError, decode_proxy_cert_info
from csctl.proxy.model import (
    DRAFT_PROXY_CERT_INFO,
    PPL_INDEPENDENT,
    PPL_INHERIT_ALL,
    PPL_LIMITED,
    PROXY_CERT_INFO,
    ProxyPolicy,
    ProxyType,
)

_LANGUAGE_TYPES = {
    PPL_INHERIT_ALL: ProxyType.FULL,
    PPL_LIMITED: ProxyType.LIMITED,
    PPL_INDEPENDENT: ProxyType.INDEPENDENT,
}


def dn(name: x509.Name) -> str:
    """A name in the grid's slash form: ``/O=Grid/CN=Alice/CN=1234``."""
    return "".join("/" + attr.rfc4514_string() for attr in name)


def proxy_policy(cert: x509.Certificate) -> ProxyPolicy | None:
    """The decoded proxyCertInfo of ``cert``, or None for a certificate that is no proxy."""
    if _has_extension(cert, DRAFT_PROXY_CERT_INFO):
        raise CredentialError(f"{dn(cert.subject)}: pre-RFC 3820 (GT3) proxies are not supported")
    try:
        ext = cert.extensions.get_extension_for_oid(PROXY_CERT_INFO)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        language, path_length = decode_proxy_cert_info(raw)
    except DerError as exc:
        raise CredentialError(f"{dn(cert.subject)}: malformed proxyCertInfo ({exc})") from exc
    return ProxyPolicy(x509.ObjectIdentifier(language), path_length, ext.critical)


def _has_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    return any(ext.oid == oid for ext in cert.extensions)


def cert_type(cert: x509.Certificate) -> ProxyType:
    """Whether ``cert`` is a CA, an end-entity certificate or which kind of proxy."""
    policy = proxy_policy(cert)
    if policy is not None:
        return _LANGUAGE_TYPES.get(policy.language, ProxyType.RESTRICTED)
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return ProxyType.CA
    except x509.ExtensionNotFound:
        pass
    return ProxyType.END_ENTITY


def identity(chain: Sequence[x509.Certificate]) -> x509.Certificate:
    """The end-entity certificate a proxy chain speaks for (the first non-proxy)."""
    for cert in chain:
        if not cert_type(cert).is_proxy:
            return cert
    raise CredentialError(f"{dn(chain[-1].subject)}: proxy chain without its end-entity")


def check_times(chain: Sequence[x509.Certificate], now: datetime) -> None:
    """Refuse a chain with any certificate expired or not yet valid at ``now``."""
    for cert in chain:
        if now < cert.not_valid_before_utc:
            start = cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%SZ")
            raise CredentialError(f"{dn(cert.subject)}: certificate not valid before {start}")
        if now > cert.not_valid_after_utc:
            end = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%SZ")
            raise CredentialError(f"{dn(cert.subject)}: certificate expired at {end}")


def check_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Refuse ``cert`` unless ``issuer``'s key signed it and the names link up."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"{dn(cert.subject)}: not issued by {dn(issuer.subject)} ({exc})") from exc
    except InvalidSignature as exc:
        raise CredentialError(
            f"{dn(cert.subject)}: signature does not verify with {dn(issuer.subject)}'s key"
        ) from exc


def check_proxy_link(proxy: x509.Certificate, issuer: x509.Certificate) -> None:
    """Refuse a proxy that breaks RFC 3820's rules towards its issuer."""
    policy = proxy_policy(proxy)
    assert policy is not None
    subject = dn(proxy.subject)
    if not policy.critical:
        raise CredentialError(f"{subject}: proxyCertInfo extension is not marked critical")
    _check_proxy_name(proxy, issuer)
    _check_not_ca(proxy)
    if cert_type(issuer) == ProxyType.LIMITED and cert_type(proxy) != ProxyType.LIMITED:
        raise CredentialError(f"{subject}: {cert_type(proxy).value} under a limited proxy")
    if cert_type(issuer) == ProxyType.CA:
        raise CredentialError(f"{subject}: proxy issued directly by a CA")
    _check_may_sign(issuer)


def _check_proxy_name(proxy: x509.Certificate, issuer: x509.Certificate) -> None:
    parent, own = list(issuer.subject.rdns), list(proxy.subject.rdns)
    last = own[-1].get_attributes_for_oid(NameOID.COMMON_NAME) if own else []
    if own[:-1] != parent or len(own[-1]) != 1 or not last:
        raise CredentialError(f"{dn(proxy.subject)}: proxy subject is not its issuer's plus one CN")


def _check_not_ca(proxy: x509.Certificate) -> None:
    try:
        if proxy.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise CredentialError(f"{dn(proxy.subject)}: a proxy must not be a CA")
    except x509.ExtensionNotFound:
        pass


def _check_may_sign(issuer: x509.Certificate) -> None:
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise CredentialError(f"{dn(issuer.subject)}: key usage forbids signing proxies")


def check_path_lengths(chain: Sequence[x509.Certificate]) -> None:
    """Refuse a chain with more proxies below one than its pCPathLenConstraint allows."""
    for index, cert in enumerate(chain):
        policy = proxy_policy(cert)
        if policy is None or policy.path_length is None:
            continue
        if index > policy.path_length:
            raise CredentialError(
                f"{dn(cert.subject)}: allows {policy.path_length} proxies below it, has {index}"
            )


def verify_chain(chain: Sequence[x509.Certificate], now: datetime, trust_dir: Path | None) -> None:
    """Verify a chain (leaf first): times, signatures, proxy rules, and its CA if known.

    With ``trust_dir`` (a grid CA directory) the top certificate must be a trusted CA
    or be signed by one found there; without it, the check stops at the end-entity.
    """
    check_times(chain, now)
    for cert, issuer in zip(chain, chain[1:], strict=False):
        if cert_type(cert).is_proxy:
            check_proxy_link(cert, issuer)
        elif cert_type(issuer) != ProxyType.CA:
            raise CredentialError(f"{dn(cert.subject)}: issued by {dn(issuer.subject)}, not a CA")
        check_signed_by(cert, issuer)
    if cert_type(chain[-1]).is_proxy:
        raise CredentialError(f"{dn(chain[-1].subject)}: proxy chain without its issuer")
    check_path_lengths(chain)
    if trust_dir is not None:
        _check_anchor(chain[-1], trust_dir, now)


def _check_anchor(top: x509.Certificate, trust_dir: Path, now: datetime) -> None:
    cas = [ca for ca in load_trust_dir(trust_dir) if ca.subject == top.issuer]
    if top in cas:
        return
    for ca in cas:
        try:
            check_signed_by(top, ca)
        except CredentialError:
            continue
        check_times([ca], now)
        return
    raise CredentialError(f"{dn(top.subject)}: issuer {dn(top.issuer)} is not a trusted CA in {trust_dir}")


def load_trust_dir(trust_dir: Path) -> list[x509.Certificate]:
    """The CA certificates of a grid trust directory (``<hash>.0``, ``<hash>.1``...)."""
    cas = []
    for path in sorted(trust_dir.glob("*.[0-9]")):
        try:
            cas.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError):
            continue  # one unreadable entry must not hide the other CAs
    return cas


SYSTEM_TRUST_DIR = Path("/etc/grid-security/certificates")
NO_TRUST_DIR = (
    "no CA directory (--cert-dir, $X509_CERT_DIR, ~/.globus/certificates, "
    "/etc/grid-security/certificates): the certificate's CA is not checked"
)


def default_trust_dir() -> Path | None:
    """Where the grid tools look for CAs: $X509_CERT_DIR, ~/.globus/certificates, /etc/..."""
    env = os.environ.get("X509_CERT_DIR")
    if env:
        return Path(env)
    for candidate in (Path.home() / ".globus/certificates", SYSTEM_TRUST_DIR):
        if candidate.is_dir():
            return candidate
    return None


def resolve_trust_dir(cert_dir: Path | None, *, require: bool) -> tuple[Path | None, list[str]]:
    """(the CA directory, warnings): ``cert_dir``, else the default one.

    With none anywhere, a certificate from any CA would be accepted: that is one
    warning, or with ``require`` (``--require-trust``) a CredentialError.
    """
    trust_dir = cert_dir or default_trust_dir()
    if trust_dir is not None:
        return trust_dir, []
    hint = "set X509_CERT_DIR or --cert-dir to your grid CA directory"
    if require:
        raise CredentialError(f"{NO_TRUST_DIR}, and --require-trust was given", hint=hint)
    return None, [f"{NO_TRUST_DIR}; {hint} (or pass --require-trust to refuse)"]


def public_der(cert_or_key: x509.Certificate) -> bytes:
    """SubjectPublicKeyInfo DER of a certificate's key (to compare keys)."""
    return cert_or_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
