"""``--set KEY=VALUE[,VALUE...]``: variants of the configuration, each validated as a file is.

The configuration is dumped, the dotted key set, and the result written back as TOML and
read by ``csctl.config.parse_config``: a bad key or value gives the one-line error any
configuration file gets (``--set: policy.max_new_vms_per_cycle: expected an integer >= 0``).
"""

from __future__ import annotations

import itertools
import json
import tomllib
from collections.abc import Sequence
from typing import Any

from csctl.config import Config, parse_config
from csctl.errors import InputError

SOURCE = "--set"
MAX_VARIANTS = 64  # each is a whole replay


def parse_value(text: str) -> Any:
    """A TOML value (``10``, ``true``, ``"x"``, ``[1, 2]``), else the text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``KEY=V1,V2`` items as (dotted key, values); InputError for one without ``=``."""
    parsed = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected KEY=VALUE[,VALUE...]")
        parsed.append((key.strip(), [parse_value(v.strip()) for v in values.split(",")]))
    return parsed


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise InputError(f"--set: cannot write a value of type {type(value).__name__}")


def to_toml(data: dict[str, Any]) -> str:
    """A configuration's data as TOML text (inline tables: parse_config reads it back)."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in data.items())


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    *parents, last = key.split(".")
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"{SOURCE}: {'.'.join(parents[: i + 1])}: is not a table")
        node = child
    node[last] = value


def shown_value(value: Any) -> str:
    """A value as ``--set`` takes it (strings without their quotes)."""
    return value if isinstance(value, str) else _toml_value(value)


def swept(items: Sequence[str]) -> list[str]:
    """The keys ``--set`` gives more than one value: what sets the variants apart."""
    return [key for key, values in parse_sets(items) if len(values) > 1]


def variants(config: Config, items: Sequence[str]) -> list[tuple[str, dict[str, Any], Config]]:
    """Every combination of the ``--set`` values: (label, the keys set, the configuration).
    ConfigError for a combination the configuration refuses."""
    sets = parse_sets(items)
    if not sets:
        return [("as configured", {}, config)]
    combos = list(itertools.product(*(values for _, values in sets)))
    if len(combos) > MAX_VARIANTS:
        raise InputError(f"--set makes {len(combos)} variants; at most {MAX_VARIANTS}")
    base = config.model_dump(mode="json", exclude_none=True)
    out = []
    for combo in combos:
        data = json.loads(json.dumps(base))  # a deep copy of plain data
        chosen = {}
        for (key, _), value in zip(sets, combo, strict=True):
            _assign(data, key, value)
            chosen[key] = value
        named = [k for k, values in sets if len(values) > 1] or list(chosen)
        label = ", ".join(f"{k}={shown_value(chosen[k])}" for k in named)
        out.append((label, chosen, parse_config(to_toml(data), source=SOURCE)))
    return out
