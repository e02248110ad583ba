"""Services: the world a use case acts through, made on first use and only once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csctl.clouds.registry import driver_module
from csctl.config import parse_config
from csctl.context.tokens import SigningKey, scramble
from csctl.engine.services import Services
from csctl.errors import ConfigError, CredentialError, ExitCode
from csctl.model import QueueSnapshot

CONFIG = """
state_dir = "{state}"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
{key}
[clouds.L]
driver = "local"
work_dir = "/var/lib/csctl-test/L"
"""


def config(tmp_path, key: str = ""):
    return parse_config(CONFIG.format(state=tmp_path / "state", key=key), source="site.toml")


class Pool:
    """A pool with an empty queue and no slots."""

    def idle_jobs(self) -> QueueSnapshot:
        return QueueSnapshot([], ["schedd"])

    def csctl_slots(self) -> list:
        return []

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        return {}, []

    def drain(self, targets, reason):
        return {}


class Factory:
    """Counts how often Services asks for the thing it makes."""

    def __init__(self, make):
        self.make = make
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.make()


def test_the_pool_is_made_on_first_use_and_only_once(tmp_path):
    factory = Factory(Pool)
    services = Services(config(tmp_path), make_pool=factory)
    assert factory.calls == 0
    pool = services.pool
    assert isinstance(pool, Pool) and services.pool is pool
    assert factory.calls == 1


def test_the_clouds_are_made_on_first_use_and_only_once(tmp_path):
    factory = Factory(lambda: {"L": object()})
    services = Services(config(tmp_path), make_clouds=factory)
    assert factory.calls == 0
    clouds = services.clouds
    assert services.clouds is clouds and list(clouds) == ["L"]
    assert factory.calls == 1


def test_without_a_factory_every_configured_cloud_gets_its_driver(tmp_path):
    cfg = config(tmp_path)
    (cloud,) = Services(cfg).clouds.values()
    assert isinstance(cloud, driver_module("local").Driver)
    assert cloud.name == "L" and cloud.settings is cfg.clouds["L"].settings


def test_clock_and_state_dir_come_from_what_was_given(tmp_path):
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    services = Services(config(tmp_path), clock=lambda: when)
    assert services.now() == when and services.state_dir == tmp_path / "state"
    assert Services(config(tmp_path)).now().tzinfo is not None


def test_signing_key_without_pool_signing_key_names_the_file_the_key_and_the_purpose(tmp_path):
    services = Services(config(tmp_path), source="/etc/csctl/site.toml")
    with pytest.raises(ConfigError) as info:
        services.signing_key("boot VMs")
    assert info.value.problems == ["/etc/csctl/site.toml: pool.signing_key: required to boot VMs"]
    assert info.value.exit_code == ExitCode.CONFIG


def test_signing_key_is_read_from_the_configured_file(tmp_path):
    path = tmp_path / "POOL"
    path.write_bytes(scramble(b"pool-secret\0"))
    path.chmod(0o600)
    services = Services(config(tmp_path, f'signing_key = "{path}"'))
    assert services.signing_key("boot VMs") == SigningKey("POOL", b"pool-secret")
    path.chmod(0o640)
    with pytest.raises(CredentialError):
        services.signing_key("boot VMs")
