"""Services: the world a use case acts through, made on first use and only once."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from csctl.clouds.registry import driver_module
from csctl.config import load_config, parse_config
from csctl.context.tokens import SigningKey, scramble
from csctl.engine import services as services_module
from csctl.engine.services import Services, idle_jobs_ahead
from csctl.errors import ConfigError, CredentialError, ExitCode, PoolUnreachable
from csctl.model import QueueSnapshot
from csctl.pool import child
from tests.pool.test_child_ahead import query_in_flight

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


def _config_file(tmp_path, collector: str = "127.0.0.1:1", rest: str = ""):
    path = tmp_path / "site.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", key="").replace("127.0.0.1:1", collector) + rest)
    return path


def test_the_query_sent_ahead_serves_the_pool_at_the_address_it_was_sent_to(tmp_path):
    path = _config_file(tmp_path)
    with idle_jobs_ahead(path):
        assert services_module._early is not None
        query = services_module._early[1]
        pool = Services(load_config(path)).pool
        assert pool._ahead is query
        with pytest.raises(PoolUnreachable, match="cannot query collector 127.0.0.1:1"):
            pool.idle_jobs()  # the query sent ahead found no schedd: asked as usual, and why
    assert query._process is None  # read


def test_a_query_sent_ahead_to_another_address_is_killed_unread(tmp_path):
    path = _config_file(tmp_path)
    with idle_jobs_ahead(path):
        assert services_module._early is not None
        query, process = services_module._early[1], services_module._early[1]._process
        _config_file(tmp_path, "127.0.0.1:2")  # the file changed between the two reads
        pool = Services(load_config(path)).pool
        assert pool._ahead is None and pool.config.collector == "127.0.0.1:2"
    assert query._process is None and process is not None and process.returncode is not None


def test_without_a_plainly_valid_address_only_the_query_process_starts_ahead(tmp_path):
    path = _config_file(tmp_path, "no such host:1")
    with idle_jobs_ahead(path):
        assert services_module._early is None and child._ahead is not None
    assert child._ahead is None


def test_the_query_goes_out_before_the_configuration_is_validated_and_dies_with_it(tmp_path):
    with socket.socket() as collector:
        collector.bind(("127.0.0.1", 0))
        collector.listen(8)
        collector.settimeout(60)
        path = _config_file(
            tmp_path, f"127.0.0.1:{collector.getsockname()[1]}", "[vm_types.small]\ncpus = 0\n"
        )
        with pytest.raises(ConfigError), idle_jobs_ahead(path):
            assert services_module._early is not None
            process = services_module._early[1]._process
            asked, _ = collector.accept()  # the query's process locates the schedd
            asked.close()
            load_config(path)
    assert process is not None and process.returncode is not None and process.returncode < 0
    assert not child._in_flight


def test_a_block_that_fails_kills_every_query_in_flight(tmp_path):
    with query_in_flight() as failed, pytest.raises(ConfigError), idle_jobs_ahead(_config_file(tmp_path)):
        raise ConfigError(["site.toml: vm_types.small.cpus: expected an integer >= 1"])
    [(message, waited)] = failed
    assert message.startswith("query process ended with status -9") and waited < 5
