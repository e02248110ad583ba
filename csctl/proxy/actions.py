"""File-level steps behind ``csctl delegate-proxy``: read inputs, make, write.

Every check runs before the first write, so a refused input leaves no file behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from csctl.errors import CredentialError
from csctl.proxy.credentials import Passphrase, load_credential, load_private_key, read_file
from csctl.proxy.files import pem_certificates, pem_private_key, proxy_file_bytes, write_private
from csctl.proxy.issue import assemble_proxy, create_request, make_proxy, sign_request
from csctl.proxy.model import DEFAULT_BITS, IssueOptions, NewProxy, SignedProxy


def make_proxy_file(
    cert: Path,
    key: Path,
    out: Path,
    options: IssueOptions,
    *,
    bits: int = DEFAULT_BITS,
    passphrase: Passphrase | None = None,
    trust_dir: Path | None = None,
) -> NewProxy:
    """grid-proxy-init: a proxy of ``cert``/``key`` written to ``out`` (0600, atomically)."""
    made = make_proxy(load_credential(cert, key, passphrase), options, bits=bits, trust_dir=trust_dir)
    write_private(out, proxy_file_bytes(made.chain, made.key))
    return made


def write_request(csr_out: Path, key_out: Path, bits: int = DEFAULT_BITS) -> None:
    """Receiver, step 1: keep a fresh key in ``key_out`` (0600), write its CSR to ``csr_out``."""
    if csr_out.resolve() == key_out.resolve():
        raise CredentialError(f"{csr_out}: the request and its key need different files")
    request = create_request(bits)
    write_private(key_out, pem_private_key(request.key))
    write_private(csr_out, request.csr.public_bytes(Encoding.PEM))


def sign_request_file(
    csr: Path,
    cert: Path,
    key: Path,
    options: IssueOptions,
    *,
    passphrase: Passphrase | None = None,
    trust_dir: Path | None = None,
) -> tuple[bytes, SignedProxy]:
    """Issuer: sign the CSR in ``csr``; (PEM of proxy cert + chain to send back, details)."""
    issuer = load_credential(cert, key, passphrase)
    signed = sign_request(read_file(csr), issuer, options, trust_dir=trust_dir)
    return pem_certificates(signed.chain), signed


def assemble_proxy_file(
    certs: Path, request_key: Path, out: Path, *, trust_dir: Path | None = None
) -> NewProxy:
    """Receiver, step 2: returned certificates + kept key -> proxy file; the kept key is removed.

    The key now lives only in ``out``, so the separate copy is deleted once it is written.
    """
    key = load_private_key(request_key, None)
    made = assemble_proxy(read_file(certs), key, trust_dir=trust_dir)
    write_private(out, proxy_file_bytes(made.chain, made.key))
    if request_key.resolve() != out.resolve():
        with contextlib.suppress(FileNotFoundError):
            request_key.unlink()
    return made
