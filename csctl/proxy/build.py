"""Sign RFC 3820 proxy certificates the way grid-proxy-init writes them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from csctl.errors import CredentialError
from csctl.proxy.chain import cert_type, dn
from csctl.proxy.der import encode_proxy_cert_info
from csctl.proxy.model import (
    BACKDATE,
    PPL_INHERIT_ALL,
    PPL_LIMITED,
    PROXY_CERT_INFO,
    Credential,
    IssueOptions,
    ProxyType,
    SignedProxy,
)

MIN_BITS = 2048


def new_key(bits: int) -> rsa.RSAPrivateKey:
    """A fresh RSA key for a proxy; fewer than 2048 bits is refused."""
    if bits < MIN_BITS:
        raise CredentialError(f"proxy keys need at least {MIN_BITS} bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def proxy_serial(public_key: rsa.RSAPublicKey) -> int:
    """globus' serial (and last CN): 31 bits of the SHA-1 of the key's SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    md = hashlib.sha1(der).digest()
    return md[0] + (md[1] + (md[2] + (md[3] >> 1) * 256) * 256) * 256 or 1


def validity(issuer: Credential, lifetime: timedelta, now: datetime) -> tuple[datetime, datetime, list[str]]:
    """(not before, not after, warnings): back-dated 5 minutes, capped at the issuer's end.

    Like grid-proxy-init, a lifetime beyond the issuer's is shortened with a warning: a
    proxy never outlives any certificate of the chain that signs it.
    """
    start = max(now - BACKDATE, *(c.not_valid_before_utc for c in issuer.chain))
    issuer_end = min(c.not_valid_after_utc for c in issuer.chain)
    if lifetime <= issuer_end - now:  # compared, not added: now + lifetime may overflow
        return start, now + lifetime, []
    left = _hours_minutes(issuer_end - now)
    warning = (
        f"requested lifetime {_hours_minutes(lifetime)} exceeds the issuer's remaining {left}; "
        f"the proxy expires with it at {issuer_end:%Y-%m-%d %H:%M:%SZ}"
    )
    return start, issuer_end, [warning]


def _hours_minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60}:{minutes % 60:02d}"


def check_may_issue(issuer: Credential, options: IssueOptions) -> None:
    """Refuse what the grid tools would not chain: a full proxy under a limited one."""
    if cert_type(issuer.cert) == ProxyType.LIMITED and not options.limited:
        raise CredentialError(
            f"{dn(issuer.cert.subject)}: a limited proxy can only issue limited proxies",
            hint="add --limited",
        )
    if options.path_length is not None and options.path_length < 0:
        raise CredentialError(f"path length must be 0 or more, not {options.path_length}")


def _key_usage(issuer: x509.Certificate) -> x509.KeyUsage | None:
    """The issuer's key usage without nonRepudiation and keyCertSign (as globus copies it)."""
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    agreement = usage.key_agreement
    return x509.KeyUsage(
        digital_signature=usage.digital_signature,
        content_commitment=False,
        key_encipherment=usage.key_encipherment,
        data_encipherment=usage.data_encipherment,
        key_agreement=agreement,
        key_cert_sign=False,
        crl_sign=usage.crl_sign,
        encipher_only=agreement and usage.encipher_only,
        decipher_only=agreement and usage.decipher_only,
    )


def _extended_key_usage(issuer: x509.Certificate) -> x509.Extension[x509.ExtendedKeyUsage] | None:
    try:
        return issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None


def _proxy_name(parent: x509.Name, serial: int) -> x509.Name:
    """The issuer's subject plus one CN holding the serial number."""
    cn = x509.NameAttribute(NameOID.COMMON_NAME, str(serial))
    return x509.Name([*parent.rdns, x509.RelativeDistinguishedName([cn])])


def _add_extensions(
    builder: x509.CertificateBuilder, parent: x509.Certificate, pci: bytes
) -> x509.CertificateBuilder:
    """Extended key usage and key usage inherited from the issuer, then proxyCertInfo."""
    eku = _extended_key_usage(parent)
    if eku is not None:
        builder = builder.add_extension(eku.value, critical=eku.critical)
    usage = _key_usage(parent)
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    return builder.add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, pci), critical=True)


def sign_proxy(
    issuer: Credential, public_key: rsa.RSAPublicKey, options: IssueOptions, now: datetime
) -> SignedProxy:
    """Sign a proxy certificate for ``public_key``; the caller has verified the issuer."""
    check_may_issue(issuer, options)
    serial = proxy_serial(public_key)
    start, end, warnings = validity(issuer, options.lifetime, now)
    language = PPL_LIMITED if options.limited else PPL_INHERIT_ALL
    pci = encode_proxy_cert_info(language.dotted_string, options.path_length)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_proxy_name(issuer.cert.subject, serial))
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    cert = _add_extensions(builder, issuer.cert, pci).sign(issuer.key, hashes.SHA256())
    return SignedProxy(chain=[cert, *issuer.chain], warnings=warnings)
