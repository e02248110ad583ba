"""GOCDB downtimes: the ``get_downtime`` XML export read into csctl downtimes. Pure.

GOCDB lists a downtime once per affected service: ``<DOWNTIME ID=".." PRIMARY_KEY=".."
CLASSIFICATION="SCHEDULED">`` with ``HOSTNAME``, ``SERVICE_TYPE``, ``SEVERITY`` (OUTAGE
or WARNING), ``DESCRIPTION`` and ``START_DATE``/``END_DATE`` (Unix seconds; the
``FORMATED_*`` forms, "YYYY-MM-DD HH:MM" UTC, are read when those are missing). Each
hostname is mapped to the clouds whose ``hostnames`` (or EC2 ``endpoint_url``) name it.

The file comes from outside: a document type declaration (the road to entity expansion
and external entities) is refused before any of it is read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn
from xml.parsers import expat

from csctl.config import Config
from csctl.plan.downtime import Downtime, Severity

MAX_GOCDB_BYTES = 16 << 20
# the host of scheme://[user@]host[:port]/...
_URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#\[\]]+)")


class GocdbError(ValueError):
    """The export cannot be read; the message says why, in one line."""


@dataclass
class Imported:
    """Downtimes read from an export, and the entries skipped, each with why."""

    downtimes: list[Downtime] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _refuse(*_args: object) -> NoReturn:
    raise GocdbError("document type declarations are refused (entity expansion)")


def parse_xml(data: bytes) -> ET.Element:
    """The export's root element; GocdbError for a DTD, an entity or malformed XML."""
    if len(data) > MAX_GOCDB_BYTES:
        raise GocdbError(f"larger than {MAX_GOCDB_BYTES} bytes")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(data, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise GocdbError(f"not well-formed XML ({exc})") from None


def cloud_hosts(config: Config) -> dict[str, list[str]]:
    """hostname (lower case) -> the clouds it names: each cloud's ``hostnames``, and the
    host of a driver's ``endpoint_url``."""
    hosts: dict[str, list[str]] = {}
    for name, cloud in config.clouds.items():
        names = {h.lower() for h in cloud.hostnames}
        endpoint = cloud.driver_options.get("endpoint_url")
        found = _URL_HOST.match(endpoint) if isinstance(endpoint, str) else None
        if found:
            names.add(found.group(1).lower())
        for host in names:
            hosts.setdefault(host, []).append(name)
    return hosts


def import_downtimes(data: bytes, config: Config) -> Imported:
    """The export's downtimes on csctl's clouds: one per GOCDB downtime and cloud (its
    id ``gocdb-<ID>-<cloud>``), services on hosts no cloud names skipped."""
    root = parse_xml(data)
    hosts = cloud_hosts(config)
    result = Imported()
    seen: set[str] = set()
    for entry in root.iter("DOWNTIME"):
        gocdb_id = entry.get("ID") or _text(entry, "PRIMARY_KEY") or "?"
        host = (_text(entry, "HOSTNAME") or "").lower()
        clouds = hosts.get(host, [])
        if not clouds:
            result.skipped.append(f"GOCDB downtime {gocdb_id}: host {host or '(none)'} is no cloud's")
            continue
        try:
            start, end = _when(entry, "START_DATE"), _when(entry, "END_DATE")
            severity = Severity((_text(entry, "SEVERITY") or "OUTAGE").lower())
        except ValueError as exc:
            result.skipped.append(f"GOCDB downtime {gocdb_id}: {exc}")
            continue
        if end <= start:
            result.skipped.append(f"GOCDB downtime {gocdb_id}: ends before it starts")
            continue
        for cloud in clouds:
            ident = f"gocdb-{gocdb_id}-{cloud}"
            if ident in seen:
                continue  # GOCDB repeats a downtime for each service of the host
            seen.add(ident)
            result.downtimes.append(
                Downtime(
                    id=ident,
                    reason=(_text(entry, "DESCRIPTION") or "").strip()[:500],
                    severity=severity,
                    cloud=cloud,
                    start=start,
                    end=end,
                    source=f"gocdb:{gocdb_id}",
                )
            )
    return result


def _text(entry: ET.Element, tag: str) -> str | None:
    child = entry.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _when(entry: ET.Element, tag: str) -> datetime:
    epoch = _text(entry, tag)
    if epoch and epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    formatted = _text(entry, f"FORMATED_{tag}")
    if formatted:
        try:
            return datetime.strptime(formatted, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(f"{tag} is missing or not a time")
