"""The demand use case: from a ``condor_q -json`` file, or from the pool and the clouds."""

from __future__ import annotations

import json

import classad2
import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.engine.demand import demand, read_job_file
from csctl.engine.services import Services
from csctl.errors import CloudBackendError, ExitCode, InputError
from csctl.model import QueueSnapshot
from csctl.plan.queue import group_ads

CONFIG = """
state_dir = "{tmp}/state"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
[clouds.L]
driver = "local"
work_dir = "{tmp}/vms"
[clouds.Down]
driver = "local"
work_dir = "{tmp}/down"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = {{ L = "host", Down = "host" }}
"""


def job(proc: int, **attrs) -> dict:
    return {"ClusterId": 1, "ProcId": proc, "JobStatus": 1, "Owner": "alice", "RequestCpus": 1, **attrs}


JOBS = [job(p, Requirements='/Expr(VMType =?= "big")/') for p in range(9)] + [
    job(9, JobStatus=2),  # running: not demand
    job(10, RequestCpus=64),  # no VM type is that big
    job(11, VMMem=[1]),  # unreadable
]


def no_pool():
    pytest.fail("a demand from a file must not ask the pool")


def no_clouds():
    pytest.fail("a demand from a file must not ask the clouds")


@pytest.fixture
def services(tmp_path) -> Services:
    config = parse_config(CONFIG.format(tmp=tmp_path))
    return Services(config, make_pool=no_pool, make_clouds=no_clouds)


def test_a_job_file_is_grouped_counted_and_planned(tmp_path, services):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(JOBS))
    result = demand(services, from_file=path)
    assert not result.partial and result.errors == []
    assert result.demand.idle_jobs == 11
    (need,) = result.demand.requirements
    assert (need.vm_type, need.clouds, need.idle_jobs, need.vms_needed) == ("big", ["L", "Down"], 9, 2)
    assert sorted((r.jobs, r.job_ids) for r in result.demand.rejected) == [(1, ["1.10"]), (1, ["1.11"])]


def test_read_job_file_groups_identical_jobs(tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(JOBS))
    groups = read_job_file(path)
    assert [(g.count, g.schedd, g.problem is None) for g in groups] == [
        (9, str(path), True),
        (1, str(path), True),
        (1, "", False),
    ]


def test_a_missing_file_is_an_input_error_naming_it(tmp_path, services):
    path = tmp_path / "none.json"
    with pytest.raises(InputError) as info:
        demand(services, from_file=path)
    assert info.value.message == (
        f"{path}: cannot read job snapshot: [Errno 2] No such file or directory: '{path}'"
    )
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("data", [{"jobs": []}, "jobs", 3])
def test_a_file_that_is_not_an_array_is_an_input_error(tmp_path, services, data):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        demand(services, from_file=path)
    assert info.value.message == (
        f"{path}: cannot read job snapshot: expected a JSON array of job ads (condor_q -json output)"
    )


def test_a_file_that_is_not_json_is_an_input_error(tmp_path, services):
    path = tmp_path / "jobs.json"
    path.write_text("-- condor_q text --")
    with pytest.raises(InputError) as info:
        read_job_file(path)
    assert info.value.message.startswith(f"{path}: cannot read job snapshot: Expecting value")


class Queue:
    """A pool whose schedd holds the given idle jobs, and no csctl slot yet."""

    def __init__(self, ads):
        self.ads = ads

    def idle_jobs(self) -> QueueSnapshot:
        return QueueSnapshot(group_ads(self.ads, "schedd@test"), ["schedd@test"])

    def csctl_slots(self) -> list:
        return []

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        return {}, []

    def drain(self, targets, reason):
        return {}


class Unreachable:
    """A cloud whose API does not answer."""

    name = "Down"

    def list_instances(self, pool: str):
        raise CloudBackendError(self.name, "connection refused")


def test_from_the_pool_a_failing_cloud_makes_the_demand_partial(tmp_path):
    config = parse_config(CONFIG.format(tmp=tmp_path))
    ads = [
        classad2.ClassAd({"ClusterId": 2, "ProcId": p, "Owner": "bob", "RequestCpus": 4}) for p in range(5)
    ]
    services = Services(
        config,
        make_pool=lambda: Queue(ads),
        make_clouds=lambda: {"L": make_cloud("L", config.clouds["L"]), "Down": Unreachable()},
    )
    result = demand(services)
    assert result.partial and result.errors == ["cloud Down: connection refused"]
    assert result.demand.warnings[0] == "cloud Down: connection refused"
    assert result.demand.idle_jobs == 5
    (need,) = result.demand.requirements
    assert (need.idle_jobs, need.vms_needed) == (5, 3)
