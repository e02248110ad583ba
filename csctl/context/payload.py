"""Reading a cloud-init payload back: what a VM (or csctl's local driver) does with it."""

from __future__ import annotations

import base64
import binascii
import gzip
from dataclasses import dataclass
from typing import Any

from csctl.errors import CsctlError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class WriteFile:
    """One ``write_files`` entry of a cloud-config."""

    path: str
    content: bytes
    mode: int


@dataclass(frozen=True)
class Payload:
    """The parts of a cloud-config csctl relies on."""

    files: list[WriteFile]
    runcmd: list[list[str]]


def parse_user_data(data: bytes) -> Payload:
    """Parse (gunzipped if needed) ``#cloud-config`` user-data; CsctlError if it is not one."""
    import yaml

    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace")
    if not text.startswith("#cloud-config"):
        raise CsctlError("user-data is not a #cloud-config document")
    try:
        doc: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CsctlError(f"user-data is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise CsctlError("user-data is not a cloud-config mapping")
    return Payload(
        [_write_file(entry) for entry in doc.get("write_files") or []],
        [_command(cmd) for cmd in doc.get("runcmd") or []],
    )


def _write_file(entry: Any) -> WriteFile:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise CsctlError("user-data: a write_files entry has no path")
    content = entry.get("content", "")
    raw = str(content).encode("utf-8")
    if entry.get("encoding") in ("b64", "base64"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise CsctlError(f"user-data: {entry['path']}: content is not base64") from None
    return WriteFile(entry["path"], raw, int(str(entry.get("permissions", "0644")), 8))


def _command(cmd: Any) -> list[str]:
    if isinstance(cmd, str):
        return ["sh", "-c", cmd]
    return [str(part) for part in cmd]
