"""A query process started ahead (csctl/pool/child.py ``started_ahead``) answers as a
fresh one does, serves only a query of its own environment, and never outlives its block;
idle jobs begun early (``HTCondorPool.begin_idle_jobs``) are what idle_jobs reads.

Most need no pool: the schedd (or collector) is an address nobody listens on, whose
refusal is the answer.
"""

from __future__ import annotations

import os
import socket
import threading

import classad2
import htcondor2
import pytest

from csctl.config import PoolConfig
from csctl.errors import PoolUnreachable
from csctl.pool import child
from csctl.pool.child import query_apart, started_ahead
from csctl.pool.htcondor import HTCondorPool
from tests.pool.test_child import _nobody_listens


def _refusal(params: dict[str, str], location: classad2.ClassAd | None = None) -> str:
    with pytest.raises(htcondor2.HTCondorException) as refused:
        query_apart(htcondor2, location or _nobody_listens(), "true", ["ClusterId"], 0, params)
    return str(refused.value)


def test_the_process_started_ahead_runs_the_query_and_answers_as_a_fresh_one():
    location = _nobody_listens()
    fresh = _refusal({}, location)
    with started_ahead():
        assert child._ahead is not None
        ahead = child._ahead[0]
        assert _refusal({}, location) == fresh != ""
        assert child._ahead is None  # taken by the query
    assert ahead.returncode == child.REFUSED  # it ran the query itself


def test_a_query_with_condor_params_gets_a_fresh_process():
    with started_ahead():
        assert child._ahead is not None
        ahead = child._ahead[0]
        assert _refusal({"TOOL_DEBUG": "D_ALWAYS"}) != ""
    assert ahead.returncode is not None and ahead.returncode < 0  # killed, unused


def test_an_unused_process_ends_with_its_block():
    with started_ahead():
        assert child._ahead is not None
        ahead = child._ahead[0]
    assert child._ahead is None
    assert ahead.returncode is not None and ahead.returncode < 0


def test_a_process_left_by_its_parent_exits_quietly_on_end_of_input():
    process = child._spawn(dict(os.environ))
    out, err = process.communicate("")
    assert (process.returncode, out, err) == (0, "", "")


def test_idle_jobs_begun_early_raise_what_idle_jobs_raises():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = HTCondorPool(PoolConfig(name="gone", collector=f"127.0.0.1:{port}"))
    with pytest.raises(PoolUnreachable) as here:
        pool.idle_jobs()
    pool._located = None  # locate again, as a fresh command would
    threads = threading.active_count()
    pool.begin_idle_jobs()
    with pytest.raises(PoolUnreachable) as begun:
        pool.idle_jobs()
    assert threading.active_count() == threads  # its thread has ended: judging may fork
    assert begun.value.message == here.value.message != ""
    with pytest.raises(PoolUnreachable):  # the begun read answers once; then idle_jobs asks again
        pool.idle_jobs()


@pytest.mark.pool
def test_idle_jobs_begun_early_are_the_groups_idle_jobs_reads(clean_queue, pool_config):
    clean_queue.submit({"executable": "/bin/true", "request_memory": "700"}, count=3)
    clean_queue.submit({"executable": "/bin/true", "request_cpus": "2"}, count=2)
    pool = HTCondorPool(pool_config.pool)
    with started_ahead():
        pool.begin_idle_jobs()
        begun = pool.idle_jobs()
    asked = pool.idle_jobs()
    assert [(str(g.ad), g.count, g.schedd) for g in begun.groups] == [
        (str(g.ad), g.count, g.schedd) for g in asked.groups
    ]
    assert sorted(g.count for g in begun.groups) == [2, 3] and begun.schedds == asked.schedds
