"""Describe a proxy (or certificate) file for ``--info``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from csctl.errors import CredentialError
from csctl.proxy.chain import cert_type, dn, identity, verify_chain
from csctl.proxy.credentials import load_certificates, read_file
from csctl.proxy.model import CertSummary, ProxyInfo


def _summary(cert: x509.Certificate) -> CertSummary:
    return CertSummary(
        subject=dn(cert.subject),
        issuer=dn(cert.issuer),
        type=cert_type(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def proxy_info(path: Path, *, trust_dir: Path | None = None, now: datetime | None = None) -> ProxyInfo:
    """Subject, issuer, identity, type, time left and chain of the file at ``path``.

    Does not read the private key. ``problem`` holds why the chain does not verify
    (None when it does), so an expired proxy can still be described.
    """
    now = now if now is not None else datetime.now(UTC)
    chain = load_certificates(path)
    try:
        verify_chain(chain, now, trust_dir)
        problem = None
    except CredentialError as exc:
        problem = exc.message
    end = min(cert.not_valid_after_utc for cert in chain)
    leaf = chain[0]
    return ProxyInfo(
        path=str(path),
        subject=dn(leaf.subject),
        issuer=dn(leaf.issuer),
        identity=dn(identity(chain).subject),
        type=cert_type(leaf),
        not_after=end,
        seconds_left=max(0, int((end - now).total_seconds())),
        has_key=b"PRIVATE KEY-----" in read_file(path),
        chain=[_summary(cert) for cert in chain],
        problem=problem,
    )
