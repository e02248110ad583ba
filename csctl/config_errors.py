"""Turning validation failures into csctl's one-line configuration errors.

Each line names the file, the key path and what was expected; a value the operator typed is
shown escaped and cut short, since the file may hold anything.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from csctl import config_guard as guard


def _expected(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    bound = ""
    if "ge" in ctx:
        bound = f" >= {ctx['ge']}"
    elif "gt" in ctx:
        bound = f" > {ctx['gt']}"
    phrases = {
        "missing": "required key is missing",
        "extra_forbidden": "unknown key",
        "int_type": f"expected an integer{bound}",
        "int_parsing": f"expected an integer{bound}",
        "greater_than_equal": f"expected a number{bound}",
        "greater_than": f"expected a number{bound}",
        "float_type": "expected a number",
        "float_parsing": "expected a number",
        "string_type": "expected a string",
        "string_too_short": "expected a non-empty string",
        "string_pattern_mismatch": "expected letters, digits, '.', '_' or '-'",
        "bool_type": "expected true or false",
        "bool_parsing": "expected true or false",
        "dict_type": "expected a table",
        "list_type": "expected an array",
        "model_type": "expected a table",
        "model_attributes_type": "expected a table",
    }
    if kind in ("greater_than_equal", "greater_than") and isinstance(error.get("input"), int):
        return f"expected an integer{bound}"
    return phrases.get(kind, str(error["msg"]))


Problem = tuple[guard.Loc, str]  # key path, and the line that reports it


def show_loc(loc: guard.Loc) -> str:
    # a key the operator typed may hold anything: quote it unless it is a plain name
    parts = [str(p) if isinstance(p, int) or guard.PLAIN_KEY.fullmatch(p) else guard.show(p, 40) for p in loc]
    return ".".join(parts)


def validation_problems(source: str, exc: ValidationError, prefix: guard.Loc = ()) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(part for part in error["loc"] if part != "[key]")
        if error["type"] == "value_error":
            # our own model validators already say the key path in the message
            problems.append((loc, f"{source}: {str(error['msg']).removeprefix('Value error, ')}"))
            continue
        line = f"{source}: {show_loc(loc)}: {_expected(error)}" if loc else f"{source}: {_expected(error)}"
        if error["type"] not in ("missing", "extra_forbidden", "vm_config_reserved"):
            line += f", got {guard.show(error['input'])}"
        problems.append((loc, line))
    return problems


def format_validation_error(source: str, exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``file: key.path: expectation, got value``."""
    return [line for _, line in validation_problems(source, exc)]


def strict_scalars(model: type[BaseModel], options: dict[str, Any], prefix: guard.Loc) -> list[Problem]:
    """A driver's booleans must be true or false and its numbers must not be: pydantic's lax
    mode would take 1 for true and true for 1."""
    problems: list[Problem] = []
    for key, value in options.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        kinds = set(get_args(field.annotation)) or {field.annotation}
        if bool in kinds and not isinstance(value, bool):
            problems.append((prefix + (key,), f"expected true or false, got {guard.show(value)}"))
        elif kinds & {int, float} and isinstance(value, bool):
            kind = "a number" if float in kinds else "an integer"
            problems.append((prefix + (key,), f"expected {kind}, got {value!r}"))
    return problems


def without_repeats(found: list[Problem], pydantic: list[Problem]) -> list[str]:
    """The scan's problems and pydantic's, one line per value, in pydantic's order: a scan
    finding replaces pydantic's complaint about the same value, and a finding under a key
    pydantic refuses as a whole (an unknown key, say) is not repeated."""

    def under(loc: guard.Loc, top: guard.Loc) -> bool:
        return loc[: len(top)] == top

    lines: list[str] = []
    shown: set[int] = set()
    for loc, line in pydantic:
        hits = [i for i, (top, _) in enumerate(found) if under(loc, top)]
        if not hits:
            lines.append(line)
        for i in hits:
            if i not in shown:
                shown.add(i)
                lines.append(found[i][1])
    refused = [loc for loc, _ in pydantic]
    for i, (loc, line) in enumerate(found):
        if i not in shown and not any(top != loc and under(loc, top) for top in refused):
            lines.append(line)
    return lines
