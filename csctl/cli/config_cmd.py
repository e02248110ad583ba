"""``csctl config``: inspect the configuration."""

from __future__ import annotations

import click

from csctl.cli.app import Application, json_option, pass_app


@click.group("config")
def command() -> None:
    """Inspect csctl's configuration file."""


@command.command("check")
@click.option(
    "--clouds",
    "ask_clouds",
    is_flag=True,
    help="Also look up each VM type's flavor on its cloud and refuse one whose disk is smaller; "
    "warn of a quota the cloud does not let csctl read.",
)
@json_option
@pass_app
def check(app: Application, ask_clouds: bool) -> None:
    """Validate the configuration and summarize it: pool, clouds, VM types. With
    --json, every setting as resolved, defaults included. With --clouds, the clouds
    are asked too: an OpenStack flavor whose root disk is smaller than its VM type's
    disk is refused (unless that cloud boots from volume), and a cloud whose quota
    cannot be read (on AWS, the vCPU limits need servicequotas:ListServiceQuotas) is
    a warning.

    Exits 3 with one line per problem (file, key path, what was expected) when invalid.

    \b
    Example:
      csctl --config ./csctl.toml config check --clouds
    """
    config = app.config
    if ask_clouds:
        _check_clouds(app)
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


def _check_clouds(app: Application) -> None:
    from csctl.engine.configcheck import check_clouds
    from csctl.errors import ConfigError

    checked = check_clouds(app.services)
    for warning in checked.warnings:
        app.console.warn(warning)
    if checked.problems:
        raise ConfigError([f"{app.config_path}: {p}" for p in checked.problems])
