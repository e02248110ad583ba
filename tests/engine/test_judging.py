"""A large queue judged in parts by forked children gives the demand of judging it whole;
a child that dies or hangs costs time, never a job."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csctl.config import load_config
from csctl.engine import judging
from csctl.engine.judging import judge_apart
from csctl.plan.demand import compute_demand, settle
from csctl.plan.queue import groups_from_json, read_json_queue
from tests.conftest import EXAMPLE_CONFIG
from tests.plan.test_demand_fuzz import GOOD, jobs

FORKED = re.compile(r"judging job groups in child process (\d+)")


def queue_jobs(count: int) -> list[dict]:
    """``count`` distinct idle jobs of a few owners, with unservable and unreadable ones
    spread through the queue (rejected, and rejected last)."""
    out = []
    for i in range(count):
        job = {
            "ClusterId": 1 + i // 100,
            "ProcId": i % 100,
            "JobStatus": 1,
            "Owner": f"user{i % 7}",
            "RequestCpus": 1 + i % 3,
            "RequestMemory": 500 + (i % 40) * 100,  # shapes shared across the parts
            "Requirements": f'/Expr(TARGET.Memory >= RequestMemory && TARGET.Machine != "wn{i}")/',
        }
        if i % 997 == 5:
            job["VMType"] = "no-such-type"  # served by no VM type: rejected with reasons
        if i % 1201 == 7:
            job["Requirements"] = "/Expr(TARGET.Cpus >= )/"  # unparsable: rejected last
        if i % 1500 == 9:
            job["AcctGroup"] = "group_cms"
        out.append(job)
    return out


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="module")
def text():
    return json.dumps(queue_jobs(judging.MIN_GROUPS + 1_000))


@pytest.fixture(scope="module")
def whole(config, text):
    """The demand of the queue judged in this process, in one piece."""
    return compute_demand(read_json_queue(io.StringIO(text).read, "q"), [], config)


def forked(records: list[logging.LogRecord]) -> list[int]:
    return [int(m.group(1)) for r in records if (m := FORKED.search(r.getMessage()))]


class Fault(logging.Handler):
    """Does ``act`` to each judging child as soon as it is forked (from the parent's own
    thread: the fork's log line is written right after it)."""

    def __init__(self, act) -> None:
        super().__init__(logging.DEBUG)
        self.act = act

    def emit(self, record: logging.LogRecord) -> None:
        for pid in forked([record]):
            self.act(pid)


@pytest.fixture
def fault():
    logger = logging.getLogger("csctl.engine.judging")
    handlers = []

    def add(act) -> None:
        handler = Fault(act)
        handlers.append(handler)
        logger.addHandler(handler)

    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield add
    logger.setLevel(old)
    for handler in handlers:
        logger.removeHandler(handler)


def test_judged_in_parts_the_queue_has_the_demand_of_judging_it_whole(config, text, whole, caplog):
    assert whole.rejected and whole.requirements and whole.need_by_owner.get("group_cms")
    assert whole.rejected[-1].reasons[0].startswith("Requirements: expression does not parse")
    caplog.set_level(logging.DEBUG, "csctl.engine.judging")
    judged = judge_apart(read_json_queue(io.StringIO(text).read, "q"), config)
    assert forked(caplog.records), "no child was forked: the parts were never judged apart"
    assert settle(judged, []) == whole


def test_a_list_of_groups_is_judged_in_parts_too(config, text, whole, caplog):
    caplog.set_level(logging.DEBUG, "csctl.engine.judging")
    groups = groups_from_json(json.loads(text), "q")
    demand = compute_demand(groups, [], config, judge_with=judge_apart)
    assert forked(caplog.records)
    assert demand == whole


def test_a_child_killed_while_it_judges_costs_no_job(config, text, whole, fault):
    fault(lambda pid: os.kill(pid, signal.SIGKILL))
    judged = judge_apart(read_json_queue(io.StringIO(text).read, "q"), config)
    (warning,) = [w for w in judged.warnings if "child process" in w]
    assert "killed by signal 9" in warning and "csctl judged them itself" in warning
    judged.warnings.remove(warning)
    assert settle(judged, []) == whole


def test_a_child_that_hangs_is_killed_and_its_part_judged_here(config, text, whole, fault, monkeypatch):
    monkeypatch.setattr(judging, "MIN_WAIT_S", 0.5)
    stopped = []
    fault(lambda pid: (os.kill(pid, signal.SIGSTOP), stopped.append(pid)))
    judged = judge_apart(read_json_queue(io.StringIO(text).read, "q"), config)
    (warning,) = [w for w in judged.warnings if "child process" in w]
    assert "no answer in time" in warning
    judged.warnings.remove(warning)
    assert settle(judged, []) == whole
    for pid in stopped:  # killed and reaped: no such process is left
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_no_child_is_forked_while_another_thread_runs(config, text, whole, caplog):
    caplog.set_level(logging.DEBUG, "csctl.engine.judging")
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        judged = judge_apart(read_json_queue(io.StringIO(text).read, "q"), config)
    finally:
        release.set()
        other.join()
    assert not forked(caplog.records)
    assert settle(judged, []) == whole


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(jobs, max_size=8))
def test_hostile_queues_judged_in_parts_give_the_same_demand(config, hostile):
    data = json.dumps([*hostile, GOOD, *hostile[::-1]])
    apart = settle(judge_apart(read_json_queue(io.StringIO(data).read, "q"), config, parts=3), [])
    assert apart == compute_demand(read_json_queue(io.StringIO(data).read, "q"), [], config)
