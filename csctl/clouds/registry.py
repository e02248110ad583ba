"""Built-in cloud drivers plus third-party ones from the ``csctl.clouds.v1`` entry points.

A driver module (or entry-point target) provides ``Settings`` (a pydantic model of
the driver's own configuration keys, extra keys forbidden) and ``Driver``
(``Driver(name, settings) -> Cloud``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from csctl.errors import ConfigError

if TYPE_CHECKING:
    from csctl.model import Cloud

ENTRY_POINT_GROUP = "csctl.clouds.v1"


class ConfiguredCloud(Protocol):
    """What ``make_cloud`` needs of a configured cloud (``csctl.config.CloudConfig``):
    its driver's name and its settings, already validated by that driver's model."""

    @property
    def driver(self) -> str: ...

    @property
    def settings(self) -> BaseModel: ...


BUILTIN_DRIVERS = {
    "ec2": "csctl.clouds.ec2",
    "local": "csctl.clouds.local",
    "openstack": "csctl.clouds.openstack",
}


def _plugin_drivers() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_drivers() -> dict[str, str]:
    """Driver name -> module path; built-ins win over plugins of the same name."""
    return {**_plugin_drivers(), **BUILTIN_DRIVERS}


def driver_module(name: str) -> ModuleType:
    """Import the module of driver ``name``; ConfigError naming the known drivers if unknown."""
    # A built-in wins over a plugin of its name anyway: no need to scan every installed
    # distribution's entry points (a good part of a command's start-up) to find it.
    drivers = BUILTIN_DRIVERS if name in BUILTIN_DRIVERS else known_drivers()
    if name not in drivers:
        known = ", ".join(sorted(drivers))
        raise ConfigError([f'unknown driver "{name}" (known: {known})'])
    return importlib.import_module(drivers[name].split(":")[0])


def driver_settings_model(name: str) -> type[BaseModel]:
    """The pydantic model validating driver ``name``'s own configuration keys."""
    settings: type[BaseModel] = driver_module(name).Settings
    return settings


def make_cloud(name: str, cloud: ConfiguredCloud) -> Cloud:
    """The driver instance serving configured cloud ``name``, with the typed settings the
    configuration was validated into."""
    driver: Cloud = driver_module(cloud.driver).Driver(name, cloud.settings)
    return driver
