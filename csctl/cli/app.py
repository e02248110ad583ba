"""The application object every command receives: options, console, configuration."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from csctl.console import Console

if TYPE_CHECKING:
    from csctl.config import Config
    from csctl.engine.services import Services

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


class Application:
    """State of one csctl invocation, built by the root command."""

    def __init__(self, config_path: Path, console: Console, debug: bool) -> None:
        self.config_path = config_path
        self.console = console
        self.debug = debug

    @cached_property
    def config(self) -> Config:
        """The configuration, loaded and validated on first use."""
        from csctl.config import load_config

        return load_config(self.config_path)

    @cached_property
    def services(self) -> Services:
        """What the engine's use cases act through: pool, clouds, clock, signing key."""
        from csctl.engine.services import Services

        return Services(self.config, source=str(self.config_path))


_pass_app = click.make_pass_decorator(Application)


def pass_app(f: Callable[..., R]) -> Callable[..., R]:
    """Hand the command the Application as its first argument."""
    return _pass_app(f)


def json_option(f: F) -> F:
    """``--json``: machine-readable output on stdout (also accepted before the command)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        app = ctx.find_object(Application)
        if value and app is not None:
            app.console.json_output = True

    decorated: F = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set,
        help="Print machine-readable JSON on stdout.",
    )(f)
    return decorated
