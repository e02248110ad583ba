"""The application object every command receives: options, console, configuration."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from csctl.console import Console

if TYPE_CHECKING:
    from csctl.clouds.base import Cloud
    from csctl.config import Config
    from csctl.core.tokens import SigningKey
    from csctl.pool.htcondor import HTCondorPool


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

    def signing_key(self, purpose: str) -> SigningKey:
        """The pool's signing key; ConfigError naming ``purpose`` when none is configured."""
        from csctl.core.tokens import read_signing_key
        from csctl.errors import ConfigError

        path = self.config.pool.signing_key
        if path is None:
            raise ConfigError([f"{self.config_path}: pool.signing_key: required to {purpose}"])
        return read_signing_key(path)

    def pool(self) -> HTCondorPool:
        """The pool, through the htcondor bindings."""
        from csctl.pool.htcondor import HTCondorPool

        return HTCondorPool(self.config.pool)

    def clouds(self) -> dict[str, Cloud]:
        """A driver for every configured cloud (a disabled one is listed and emptied,
        never booted on)."""
        from csctl.clouds.registry import make_cloud

        return {n: make_cloud(n, c) for n, c in self.config.clouds.items()}


pass_app = click.make_pass_decorator(Application)


def json_option(f):  # type: ignore[no-untyped-def]
    """``--json``: machine-readable output on stdout (also accepted before the command)."""

    def _set(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        app = ctx.find_object(Application)
        if value and app is not None:
            app.console.json_output = True

    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set,
        help="Print machine-readable JSON on stdout.",
    )(f)
