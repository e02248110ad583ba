"""Names and plain data shared by the proxy modules: OIDs, proxy types, results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)

# RFC 3820 proxyCertInfo and the policy languages the grid tools write.
PROXY_CERT_INFO = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.14")
# Pre-RFC (GT3 draft) proxyCertInfo: recognised only to refuse it by name.
DRAFT_PROXY_CERT_INFO = x509.ObjectIdentifier("1.3.6.1.4.1.3536.1.222")
PPL_INHERIT_ALL = x509.ObjectIdentifier("1.3.6.1.5.5.7.21.1")
PPL_INDEPENDENT = x509.ObjectIdentifier("1.3.6.1.5.5.7.21.2")
PPL_LIMITED = x509.ObjectIdentifier("1.3.6.1.4.1.3536.1.1.1.9")  # Globus id-ppl-limited

DEFAULT_LIFETIME = timedelta(hours=12)
DEFAULT_BITS = 2048
# The grid tools back-date a proxy by five minutes to absorb clock skew.
BACKDATE = timedelta(minutes=5)


class ProxyType(StrEnum):
    """What one certificate of a chain is."""

    CA = "CA"
    END_ENTITY = "end-entity"
    FULL = "full proxy"
    LIMITED = "limited proxy"
    INDEPENDENT = "independent proxy"
    RESTRICTED = "restricted proxy"

    @property
    def is_proxy(self) -> bool:
        """True for the RFC 3820 proxy kinds."""
        return self not in (ProxyType.CA, ProxyType.END_ENTITY)


@dataclass(frozen=True)
class ProxyPolicy:
    """The decoded proxyCertInfo extension of one certificate."""

    language: x509.ObjectIdentifier
    path_length: int | None
    critical: bool


@dataclass(frozen=True)
class Credential:
    """A certificate chain (leaf first, CA excluded) and the leaf's private key."""

    chain: list[x509.Certificate]
    key: CertificateIssuerPrivateKeyTypes
    source: str

    @property
    def cert(self) -> x509.Certificate:
        """The leaf certificate, the one whose key this credential holds."""
        return self.chain[0]


@dataclass(frozen=True)
class IssueOptions:
    """What the issuer asks for when signing a proxy."""

    lifetime: timedelta = DEFAULT_LIFETIME
    limited: bool = False
    path_length: int | None = None


@dataclass(frozen=True)
class SignedProxy:
    """A freshly signed proxy certificate, its issuer chain and any warnings."""

    chain: list[x509.Certificate]
    warnings: list[str] = field(default_factory=list)

    @property
    def cert(self) -> x509.Certificate:
        """The new proxy certificate."""
        return self.chain[0]


@dataclass(frozen=True)
class NewProxy:
    """A proxy ready to write: its chain (proxy first), the proxy's key, warnings."""

    chain: list[x509.Certificate]
    key: PrivateKeyTypes
    warnings: list[str] = field(default_factory=list)

    @property
    def cert(self) -> x509.Certificate:
        """The proxy certificate."""
        return self.chain[0]


@dataclass(frozen=True)
class ProxyRequest:
    """The receiver's half of a delegation: a fresh key (kept) and a CSR (sent)."""

    key: PrivateKeyTypes
    csr: x509.CertificateSigningRequest


@dataclass(frozen=True)
class CertSummary:
    """One certificate of a chain as ``--info`` shows it."""

    subject: str
    issuer: str
    type: ProxyType
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class ProxyInfo:
    """What ``--info`` reports about a proxy (or certificate) file."""

    path: str
    subject: str
    issuer: str
    identity: str
    type: ProxyType
    not_after: datetime
    seconds_left: int
    has_key: bool
    chain: list[CertSummary]
    problem: str | None
