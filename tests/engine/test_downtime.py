"""Downtimes in the engine: the cycle's plan under an outage and a service downtime, the
collector ads published and withdrawn, and ``status`` read from one snapshot plus the
state directory. The pool and the clouds are small in-memory peers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import classad2
import pytest

from csctl.config import parse_config
from csctl.engine.cycle import CycleReport, plan_cycle
from csctl.engine.downtime import AD_TYPE, publish_to, read_downtimes
from csctl.engine.services import Services
from csctl.engine.state import save_backoff
from csctl.engine.status import record_cycle, status
from csctl.errors import PoolUnreachable
from csctl.model import (
    BootRequest,
    DrainTarget,
    Instance,
    JobGroup,
    QueueSnapshot,
    Quota,
    StartdSlot,
)
from csctl.plan.backoff import Backoff
from csctl.plan.downtime import Downtime, Severity
from csctl.plan.downtime_rules import to_json
from tests.plan.fleet import CONFIG, NOW, busy, inst

VM = "a-0a1b2c3d-0"  # a csctl id, as the snapshot requires


class Pool:
    """Ten idle one-core jobs, the given slots, and a collector that keeps the ads it is sent."""

    def __init__(self, slots: Sequence[StartdSlot] = (), down: bool = False) -> None:
        self.slots, self.down = list(slots), down
        self.ads: dict[str, Mapping[str, Any]] = {}

    def idle_jobs(self) -> QueueSnapshot:
        ad = classad2.ClassAd({"RequestCpus": 1, "RequestMemory": 100, "Owner": "alice"})
        return QueueSnapshot([JobGroup(ad, 10, ["1.0", "1.1"], "s1")], ["s1"])

    def csctl_slots(self) -> list[StartdSlot]:
        return self.slots

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        return {}, []

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        raise AssertionError("not in a plan")

    def advertise(self, ads: Sequence[Mapping[str, Any]]) -> None:
        if self.down:
            raise PoolUnreachable("collector 127.0.0.1:1 refused the ads: no answer")
        self.ads |= {str(ad["Name"]): ad for ad in ads}

    def invalidate(self, ad_type: str, names: Sequence[str]) -> None:
        assert ad_type == AD_TYPE
        for name in names:
            self.ads.pop(name, None)


class Cloud:
    """A cloud listing the given instances, with a quota."""

    metadata_service, user_data_limit, private_network, zones = "none", None, False, ()

    def __init__(self, name: str, instances: Sequence[Instance] = ()) -> None:
        self.name, self.instances = name, list(instances)

    def list_instances(self, pool: str) -> list[Instance]:
        return self.instances

    def boot(self, request: BootRequest) -> list[Instance]:
        raise AssertionError("not in a plan")

    def quota(self) -> Quota:
        return Quota(instances=7, cores=28)


@pytest.fixture
def config(tmp_path: Path):
    return parse_config(f'state_dir = "{tmp_path}"\n' + CONFIG.format(lifetime=0, b_enabled="true"))


def declare(tmp_path: Path, *downtimes: Downtime) -> None:
    data = {"schema": "csctl.downtimes/1", "next_id": 9, "downtimes": [to_json(d) for d in downtimes]}
    (tmp_path / "downtimes.json").write_text(json.dumps(data))


def services(config, pool: Pool, clouds: dict[str, Cloud]) -> Services:
    return Services(config, make_pool=lambda: pool, make_clouds=lambda: clouds, clock=lambda: NOW)


def test_an_outage_sends_the_plan_to_the_other_cloud_and_drains_its_vm(config, tmp_path):
    declare(
        tmp_path,
        Downtime(
            "1", reason="upgrade", cloud="A", start=NOW + timedelta(minutes=10), end=NOW + timedelta(hours=2)
        ),
    )
    clouds = {"A": Cloud("A", [inst(VM)]), "B": Cloud("B")}
    plan = plan_cycle(config, Pool(busy(VM)), clouds, Backoff(), NOW)
    assert {(i.cloud, i.vm_type) for i in plan.boot.items} == {("B", "t")}
    assert [line.split(" (")[0] for line in plan.downtime] == ["t on A kept out by downtime 1"]
    assert [(r.csctl_id, r.action.value) for r in plan.retire.retirements] == [(VM, "drain")]


def test_a_service_downtime_boots_nothing_and_holds_retirements(config, tmp_path):
    declare(
        tmp_path, Downtime("s", reason="CM upgrade", service=True, start=NOW, end=NOW + timedelta(hours=1))
    )
    plan = plan_cycle(config, Pool(busy(VM)), {"A": Cloud("A", [inst(VM)]), "B": Cloud("B")}, Backoff(), NOW)
    assert plan.boot.items == [] and plan.retire.retirements == []
    assert "CM upgrade" in plan.retire.held[0]


def test_ads_are_published_for_current_and_coming_downtimes_and_withdrawn_after(config):
    pool = Pool()
    now_on = Downtime("1", cloud="A", start=NOW, end=NOW + timedelta(hours=1), reason="r")
    over = Downtime("2", cloud="B", start=NOW - timedelta(hours=2), end=NOW - timedelta(hours=1))
    pool.ads["csctl-downtime-2@p"] = {"Name": "csctl-downtime-2@p"}
    assert publish_to(pool, config, [now_on, over], NOW, []) == []
    (ad,) = pool.ads.values()
    assert (ad["MyType"], ad["Name"], ad["Scope"], ad["Reason"]) == (
        AD_TYPE,
        "csctl-downtime-1@p",
        "cloud A",
        "r",
    )
    assert (ad["Start"], ad["End"]) == (int(NOW.timestamp()), int(NOW.timestamp()) + 3600)
    assert ad["ClassAdLifetime"] == 3600 + 300  # gone by itself if csctl stops running
    assert publish_to(pool, config, [], NOW, [now_on]) == [] and pool.ads == {}
    assert publish_to(Pool(down=True), config, [now_on], NOW, []) == [
        "downtime ads not published: collector 127.0.0.1:1 refused the ads: no answer"
    ]


def test_an_unreadable_downtimes_file_costs_its_entries_with_a_warning(tmp_path):
    (tmp_path / "downtimes.json").write_text('{"schema": "csctl.downtimes/1", "downtimes": [{"id": 3}]}')
    downtimes, warnings = read_downtimes(tmp_path)
    assert downtimes == [] and warnings == [
        f"{tmp_path / 'downtimes.json'}: entry {{'id': 3}} ignored (not a downtime)"
    ]


def test_status_shows_clouds_demand_backoff_downtimes_and_the_last_cycle(config, tmp_path):
    declare(
        tmp_path,
        Downtime(
            "1", cloud="A", start=NOW - timedelta(minutes=5), end=NOW + timedelta(hours=1), reason="now"
        ),
        Downtime("2", vm_type="t", severity=Severity.WARNING, schedule="0 22 * * *", duration_minutes=60),
    )
    backoff = Backoff()
    backoff.fail("B", NOW)
    save_backoff(tmp_path, backoff)
    record_cycle(tmp_path, NOW - timedelta(minutes=5), CycleReport(idle_jobs=2, booted=1, seconds=1.5))
    clouds = {"A": Cloud("A", [inst(VM)]), "B": Cloud("B")}
    report = status(services(config, Pool(busy(VM)), clouds))
    a, b = report.clouds
    assert (a.name, a.enabled, a.vms, a.used, a.limits) == (
        "A",
        True,
        {"busy": 1},
        {"vms": 1, "cores": 4},
        {"vms": None, "cores": None},
    )
    assert a.quota == {"instances": 7, "cores": 28, "memory_mb": None}
    assert a.downtime_active is not None and a.downtime_active.startswith("downtime 1 (cloud A, outage")
    assert (
        b.downtime_active is None
        and b.downtime_next is not None
        and b.downtime_next.startswith("downtime 2 (type t, warning 2026-11-25 22:00")
    )
    assert b.backoff_until == backoff.until["B"].isoformat() and b.backoff_failures == 1
    assert report.demand == {"idle_jobs": 10, "unservable_jobs": 0, "vms_needed": {"t": 2}}
    assert report.last_cycle is not None and report.last_cycle["exit_code"] == 0
    assert report.last_cycle["summary"].startswith("2 idle jobs, 0 VMs, booted 1")
    assert report.ledger is None
