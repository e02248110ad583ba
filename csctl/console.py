"""The one console: results to stdout, messages to stderr.

Rich tables on a terminal, plain text when piped, JSON with ``--json``;
``NO_COLOR`` is honoured by rich itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console as RichConsole


def _jsonable(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class Console:
    """Output for one csctl invocation.

    ``verbosity``: -1 quiet (errors only), 0 normal, 1+ verbose. rich is imported on first
    output, not at start-up: a quiet ``--json`` run may never need it.
    """

    def __init__(self, *, verbosity: int = 0, json_output: bool = False) -> None:
        self.verbosity = verbosity
        self.json_output = json_output

    @cached_property
    def out(self) -> RichConsole:
        """Results (stdout)."""
        from rich.console import Console as RichConsole

        return RichConsole(soft_wrap=True, highlight=False)

    @cached_property
    def err(self) -> RichConsole:
        """Messages (stderr)."""
        from rich.console import Console as RichConsole

        return RichConsole(stderr=True, soft_wrap=True, highlight=False)

    # results (stdout)
    def print_json(self, data: Any) -> None:
        import json

        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")
        sys.stdout.flush()

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        for column in columns:
            numeric = rows and all(isinstance(r[columns.index(column)], int) for r in rows)
            table.add_column(column, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*("-" if v is None else str(v) for v in row))
        self.out.print(table)

    def result(self, text: str) -> None:
        self.out.print(text, markup=False)

    # messages (stderr)
    def info(self, text: str) -> None:
        if self.verbosity >= 0:
            self.err.print(text, markup=False)

    def detail(self, text: str) -> None:
        if self.verbosity >= 1:
            self.err.print(text, markup=False, style="dim")

    def warn(self, text: str) -> None:
        if self.verbosity >= 0:
            self.err.print(f"warning: {text}", markup=False, style="yellow")

    def error(self, text: str, hint: str | None = None) -> None:
        self.err.print(f"error: {text}", markup=False, style="bold red")
        if hint:
            self.err.print(f"hint: {hint}", markup=False)
