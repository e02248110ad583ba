"""What ``csctl delegate-proxy`` will write, worked out and checked before anything is done."""

from __future__ import annotations

from typing import Any

from csctl.proxy import default_proxy_path
from csctl.proxy.chain import resolve_trust_dir
from csctl.proxy.issuer import protect_credential

# What each mode writes (for --request-key under --assemble: removes), by option.
WRITES = {
    "": ("out",),
    "request": ("request", "request_key"),
    "sign": ("out",),
    "assemble": ("out", "request_key"),
    "refresh_jobs": ("out",),
    "info": (),
}


def fill_defaults(mode: str, opts: dict[str, Any]) -> None:
    """Put the default output paths in ``opts``, so they are checked like given ones."""
    if mode in ("", "assemble"):
        opts["out"] = opts["out"] or default_proxy_path()
    if mode == "request":
        csr = opts["request"]
        opts["request_key"] = opts["request_key"] or csr.with_name(csr.name + ".key")


def protect(mode: str, opts: dict[str, Any]) -> None:
    """Refuse (exit 2, before anything is read, asked or written) to write over --cert or --key."""
    outputs = {"--" + name.replace("_", "-"): opts[name] for name in WRITES[mode]}
    protect_credential(outputs, opts["cert"], opts["key"])


def resolve_trust(mode: str, opts: dict[str, Any]) -> list[str]:
    """Settle ``opts["cert_dir"]`` for the modes that verify a chain; the warning to show
    when there is no CA directory (a CredentialError instead under --require-trust)."""
    if mode == "request" or (mode == "refresh_jobs" and opts["dry_run"]):
        return []  # nothing is verified
    opts["cert_dir"], warnings = resolve_trust_dir(opts["cert_dir"], require=opts["require_trust"])
    return warnings
