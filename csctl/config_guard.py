"""The configuration is untrusted input: the checks that keep a hostile or mistaken value
from crashing csctl later or from reaching a VM's HTCondor configuration.

``scan`` walks the parsed TOML once, before the models see it, so that driver sections
are covered too: no control characters in a string (two multi-line keys may hold
newlines and tabs), no ``inf`` or ``nan``, no integer beyond 64 bits, no nesting deeper
than any key needs. The value checks below are used by csctl.config's types.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from csctl.plan import attributes as A

Loc = tuple[str | int, ...]

MAX_CONFIG_BYTES = 1 << 20  # far more than any real configuration; bounds what a mistake costs
MAX_DEPTH = 16  # the deepest key csctl knows is 4 levels down; a list of strings adds one
INT64 = 2**63 - 1
# the keys whose value is HTCondor configuration text, several lines by design
MULTILINE_KEYS = (("pool", "vm_config"), ("clouds", "*", "condor_config"))

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_COLLECTOR = re.compile(rf"(?P<host>{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{{1,5}}))?")
PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")  # shown unquoted in a key path
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOB = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # pool, cloud and VM type names
NAME_PATTERN = f"^{NAME.pattern}$"  # the same, for pydantic

# HTCondor knobs that decide who may do what on a VM, and the attributes csctl joins its
# VMs on: pool.vm_config may not set them, and no vm_types.*.attributes key may be one
SECURITY_PREFIXES = ("ALLOW_", "DENY_", "HOSTALLOW_", "HOSTDENY_", "SEC_", "SETTABLE_ATTRS_")
SECURITY_KNOBS = {"TRUST_DOMAIN", "ENABLE_RUNTIME_CONFIG", "ENABLE_PERSISTENT_CONFIG", "STARTD_ATTRS"}
SECURITY_KNOBS |= {"STARTD_EXPRS", "CERTIFICATE_MAPFILE"}
CSCTL_ATTRIBUTES = {
    name.upper()
    for name in (A.CSCTL_ID, A.CSCTL_POOL, A.CSCTL_TYPE, A.CSCTL_CLOUD, A.CSCTL_BATCH, A.VM_TYPE)
    + (A.CLOUD_NAME, A.CSCTL_KEEP_ALIVE, A.CSCTL_IMAGE_TEST)
}
# the other knobs csctl writes into a VM's configuration: an attribute of that name
# would overwrite them, as the attribute is written as a knob too
CSCTL_KNOBS = {
    "CONDOR_HOST", "COLLECTOR_HOST", "DAEMON_LIST", "START", "NUM_CPUS", "MEMORY",
    "NUM_SLOTS_TYPE_1", "SLOT_TYPE_1", "SLOT_TYPE_1_PARTITIONABLE", "MAXJOBRETIREMENTTIME",
    "FILESYSTEM_DOMAIN", "UID_DOMAIN", "CCB_ADDRESS",
}  # fmt: skip


def show(value: Any, limit: int = 60) -> str:
    """A value as an error line shows it: on one line, quoted if a string, cut if long."""
    if isinstance(value, str):
        text = '"' + _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), value) + '"'
    elif isinstance(value, (dict, list)):
        return "table" if isinstance(value, dict) else "array"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return f"an integer of {len(str(abs(value)))} digits"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _multiline(loc: Loc) -> bool:
    return any(
        len(loc) == len(key) and all(k in ("*", part) for k, part in zip(key, loc, strict=True))
        for key in MULTILINE_KEYS
    )


def scan(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """(key path, expectation) for every value no key may hold, in file order."""
    problems: list[tuple[Loc, str]] = []
    for loc, value in _walk(data):
        if isinstance(value, (dict, list)):
            problems.append((loc, f"nested too deeply (more than {MAX_DEPTH} levels)"))
        elif isinstance(value, str):
            if _multiline(loc) and _CONTROL_BUT_LINES.search(value):
                problems.append((loc, f"expected text without control characters, got {show(value)}"))
            elif not _multiline(loc) and _CONTROL.search(value):
                problems.append((loc, f"expected one line without control characters, got {show(value)}"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((loc, f"expected a finite number, got {value}"))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
            problems.append((loc, f"expected a 64-bit integer, got {show(value)}"))
    return problems


def _walk(data: Any) -> Iterator[tuple[Loc, Any]]:
    """Every leaf value with its key path; a table or array too deep is yielded as a leaf.
    Iterative, so that no nesting can exhaust the stack."""
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, (dict, list)) and len(loc) < MAX_DEPTH:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(loc + (key,), item) for key, item in items]))
        elif loc:
            yield loc, value


# -- values used by csctl.config's types --------------------------------------------------


def _invalid(kind: str, message: str) -> Exception:
    """The error a check raises: pydantic's, imported only then, so that reading the pool's
    address ahead of the whole configuration (csctl/config_early.py) imports no pydantic."""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError(kind, message)


def check_collector(value: Any) -> Any:
    """``host`` or ``host:port``: a DNS name, an IPv4 address or a bracketed IPv6 address."""
    match = _COLLECTOR.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise _invalid("collector", "expected host or host:port (port 1-65535)")
    return value


def check_domain(value: Any) -> Any:
    """A domain name: labels of letters, digits, '-' and '_' joined by dots."""
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value):
        raise _invalid("domain", "expected a domain name (letters, digits, '-', '_' and '.')")
    return value


def check_knob_name(value: Any) -> Any:
    """An HTCondor configuration knob name (``pool.condor_params`` keys)."""
    if not isinstance(value, str) or not _KNOB.fullmatch(value):
        raise _invalid("knob", "expected an HTCondor knob name (letters, digits, '_' and '.')")
    return value


def check_attribute_name(value: Any) -> Any:
    """A ClassAd identifier that names none of csctl's own knobs, attributes or security knobs."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise _invalid("attr_name", "expected a ClassAd attribute name (letters, digits, '_')")
    if reserved_knob(value) or value.upper() in CSCTL_KNOBS:
        raise _invalid("attr_name", "expected an attribute csctl does not set itself")
    return value


def check_attribute_value(value: Any) -> Any:
    """A value written as one ClassAd literal: a bool, a 64-bit integer, a finite number or
    one line of text that HTCondor will not expand (no ``$(``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) <= INT64:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and not _CONTROL.search(value) and "$(" not in value:
        return value
    raise _invalid("attr_value", "expected true, false, a finite number or one line of text without '$('")


def check_word(value: Any) -> Any:
    """Letters, digits and '_' (``arch``, ``opsys``: written into ClassAd expressions)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_]+", value):
        raise _invalid("word", "expected letters, digits or '_'")
    return value


def check_path(value: Any) -> Any:
    """A path given as a non-empty string (``""`` would silently mean the current directory)."""
    text = str(value) if isinstance(value, PurePath) else value
    if not isinstance(text, str) or not text.strip() or _CONTROL.search(text):
        raise _invalid("path", "expected a non-empty path without control characters")
    return value


def reserved_knob(name: str) -> bool:
    """Whether ``name`` (``SUBSYS.`` or local-name prefixes allowed) is a knob csctl keeps:
    a security knob, STARTD_ATTRS or one of csctl's attributes."""
    knob = name.rsplit(".", 1)[-1].upper()
    return knob.startswith(SECURITY_PREFIXES) or knob in SECURITY_KNOBS or knob in CSCTL_ATTRIBUTES


_ASSIGNMENT = re.compile(r"\s*([^\s=:@#]+)\s*(?:=|@=|:)")
_USE_SECURITY = re.compile(r"\s*use\s+security\s*:", re.IGNORECASE)


def vm_config_problems(text: str) -> list[str]:
    """One phrase per line of ``pool.vm_config`` that would change csctl's security settings,
    STARTD_ATTRS or csctl's attributes. Lines are read both as written and joined at a
    trailing backslash, as HTCondor joins them, so a split name is caught too."""
    physical = text.split("\n")
    logical: list[tuple[int, str]] = []
    start, pending = 0, ""
    for number, line in enumerate(physical, 1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        logical.append((start, pending + line))
        pending = ""
    if pending:
        logical.append((start, pending))
    found: dict[int, str] = {}
    for number, line in [*enumerate(physical, 1), *logical]:
        why = _line_problem(line)
        if why and number not in found:
            found[number] = why
    return [f"line {number} {why}" for number, why in sorted(found.items())]


def _line_problem(line: str) -> str | None:
    if _USE_SECURITY.match(line):
        return "uses a SECURITY metaknob"
    match = _ASSIGNMENT.match(line)
    if match is None or match[1].lower() in ("use", "include", "if", "elif", "else", "endif"):
        return None
    name = match[1]
    if "$" in name:
        return f"sets a knob named by a macro ({name})"
    return f"sets {name}" if reserved_knob(name) else None
