"""RFC 3820 proxy certificates: make them, delegate them, describe them.

The core of ``csctl delegate-proxy``; it imports neither click nor rich, and
raises only csctl.errors.CredentialError. Other code (for instance, refreshing
queued jobs' proxies) calls make_proxy with a loaded Credential.
"""

from __future__ import annotations

from csctl.proxy.chain import cert_type, default_trust_dir, verify_chain
from csctl.proxy.credentials import (
    default_cert_paths,
    default_proxy_path,
    load_credential,
    load_private_key,
)
from csctl.proxy.files import pem_certificates, pem_private_key, proxy_file_bytes, write_private
from csctl.proxy.info import proxy_info
from csctl.proxy.issue import assemble_proxy, create_request, make_proxy, sign_request
from csctl.proxy.model import (
    DEFAULT_LIFETIME,
    Credential,
    IssueOptions,
    NewProxy,
    ProxyInfo,
    ProxyRequest,
    ProxyType,
    SignedProxy,
)

__all__ = [
    "DEFAULT_LIFETIME",
    "Credential",
    "IssueOptions",
    "NewProxy",
    "ProxyInfo",
    "ProxyRequest",
    "ProxyType",
    "SignedProxy",
    "assemble_proxy",
    "cert_type",
    "create_request",
    "default_cert_paths",
    "default_proxy_path",
    "default_trust_dir",
    "load_credential",
    "load_private_key",
    "make_proxy",
    "pem_certificates",
    "pem_private_key",
    "proxy_file_bytes",
    "proxy_info",
    "sign_request",
    "verify_chain",
    "write_private",
]
