"""``csctl config``: inspect the configuration."""

from __future__ import annotations

import click

from csctl.cli.app import Application, json_option, pass_app


@click.group("config")
def command() -> None:
    """Inspect csctl's configuration file."""


@command.command("check")
@json_option
@pass_app
def check(app: Application) -> None:
    """Validate the configuration and summarize it: pool, clouds, VM types. With
    --json, every setting as resolved, defaults included.

    Exits 3 with one line per problem (file, key path, what was expected) when invalid.

    \b
    Example:
      csctl --config ./csctl.toml config check
    """
    config = app.config
    if app.console.json_output:
        app.console.print_json(config.model_dump(mode="json"))
        return
    console = app.console
    console.result(f"{app.config_path}: OK")
    console.result(f"pool {config.pool.name}: collector {config.pool.collector}")
    rows = [
        (name, c.driver, "yes" if c.enabled else "no", c.priority, c.max_vms, c.max_cores)
        for name, c in config.clouds.items()
    ]
    console.table("clouds", ["cloud", "driver", "enabled", "priority", "max VMs", "max cores"], rows)
    type_rows = [
        (name, t.cpus, t.memory, t.disk, t.arch, ", ".join(sorted(t.images)))
        for name, t in config.vm_types.items()
    ]
    console.table("VM types", ["type", "cpus", "memory MB", "disk GB", "arch", "clouds"], type_rows)
