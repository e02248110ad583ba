"""RFC 3820 proxy certificates: make them, delegate them, describe them.

The core of ``csctl delegate-proxy``; it imports neither click nor rich, and
raises only csctl.errors.CredentialError (an unusable credential) and InputError (bad
input: an option value, an output naming the user's key). Other code (for instance, refreshing
queued jobs' proxies) calls make_proxy with a loaded Credential.
"""

from __future__ import annotations

from csctl.proxy.actions import (
    assemble_proxy_file,
    make_proxy_file,
    sign_request_file,
    write_request,
)
from csctl.proxy.chain import cert_type, default_trust_dir, verify_chain
from csctl.proxy.credentials import (
    default_cert_paths,
    default_proxy_path,
    load_credential,
    load_private_key,
    parse_lifetime,
    passphrase_from_fd,
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
    "assemble_proxy_file",
    "cert_type",
    "create_request",
    "default_cert_paths",
    "default_proxy_path",
    "default_trust_dir",
    "load_credential",
    "load_private_key",
    "make_proxy",
    "make_proxy_file",
    "parse_lifetime",
    "passphrase_from_fd",
    "pem_certificates",
    "pem_private_key",
    "proxy_file_bytes",
    "proxy_info",
    "sign_request",
    "sign_request_file",
    "verify_chain",
    "write_private",
    "write_request",
]
