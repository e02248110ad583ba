"""The refresh use case's wiring: the configured pool's schedds, the services' clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from csctl.config import parse_config
from csctl.engine.proxy import refresh_proxies
from csctl.engine.services import Services
from csctl.errors import PoolUnreachable
from csctl.model import DrainTarget, QueueSnapshot, StartdSlot
from csctl.proxy import IssueOptions
from csctl.proxy.issuer import Issuer
from csctl.proxy.refresh import RefreshSettings


def _settings(tmp_path: Path) -> RefreshSettings:
    def never(prompt: str) -> str:
        raise AssertionError("no proxy is made when no schedd answers")

    issuer = Issuer.resolve(IssueOptions(), prompt=never, cert=tmp_path / "c", key=tmp_path / "k")
    return RefreshSettings(issuer, "alice")


def test_an_unreachable_collector_is_reported_before_any_proxy_is_made(tmp_path: Path) -> None:
    # nothing listens on port 1: the real bindings fail fast, and no job is touched
    config = parse_config('[pool]\nname = "p"\ncollector = "127.0.0.1:1"\n')
    with pytest.raises(PoolUnreachable) as raised:
        refresh_proxies(Services(config), _settings(tmp_path))
    assert raised.value.message.startswith("cannot query collector 127.0.0.1:1: ")
    assert not list(tmp_path.iterdir())


class _QueueOnlyPool:
    """A Pool without schedds of its own (as a test double of the Pool protocol is)."""

    def idle_jobs(self) -> QueueSnapshot:
        return QueueSnapshot(groups=[], schedds=[])

    def csctl_slots(self) -> list[StartdSlot]:
        return []

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        return {}, []

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        return {}


def test_a_pool_without_schedds_cannot_refresh(tmp_path: Path) -> None:
    config = parse_config('[pool]\nname = "p"\ncollector = "127.0.0.1:1"\n')
    services = Services(config, make_pool=_QueueOnlyPool)
    with pytest.raises(PoolUnreachable) as raised:
        refresh_proxies(services, _settings(tmp_path))
    assert raised.value.message == "_QueueOnlyPool cannot refresh job proxies: it has no schedds"
