"""Schedd queries in a child process answer exactly what the same query in-process does.

htcondor2 holds the GIL for a whole query, so the queries a snapshot overlaps with other
work run in child processes (csctl/pool/child.py); these tests hold the two paths to the
same ads and the same errors.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import classad2
import htcondor2
import pytest

from csctl.config import PoolConfig
from csctl.model import DrainTarget
from csctl.plan.jobs import SIGNIFICANT_ATTRS
from csctl.pool.child import query_apart, started_ahead
from csctl.pool.htcondor import HTCondorPool
from csctl.pool.settings import TIMEOUT_KNOB, param_set

VERSION = "$CondorVersion: 23.9.6 2024-07-02 BuildID: Debian-23.9.6 PackageID: 23.9.6 $"


def _nobody_listens() -> classad2.ClassAd:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return classad2.ClassAd(
        {"MyAddress": f"<127.0.0.1:{port}>", "MyType": "Scheduler", "Name": "gone", "CondorVersion": VERSION}
    )


@pytest.fixture
def knob() -> Iterator[None]:
    """TIMEOUT_KNOB as it was, after the test: HTCondor's settings are the process's."""
    with param_set(htcondor2, TIMEOUT_KNOB, htcondor2.param.get(TIMEOUT_KNOB)):
        yield


def test_the_pool_timeout_sets_htcondor_s_multiplier_unless_condor_params_does(knob):
    HTCondorPool(PoolConfig(name="p", collector="127.0.0.1:9", timeout=41))
    assert htcondor2.param[TIMEOUT_KNOB] == "3"  # HTCondor waits 20 s times it: >= 41 s
    HTCondorPool(PoolConfig(name="p", collector="127.0.0.1:9"))
    assert htcondor2.param[TIMEOUT_KNOB] == "3"  # the default, 60 s
    HTCondorPool(PoolConfig(name="p", collector="127.0.0.1:9", condor_params={TIMEOUT_KNOB.lower(): "7"}))
    assert htcondor2.param[TIMEOUT_KNOB] == "7"  # the operator's own setting stands


def test_a_query_apart_waits_as_long_as_this_process_would(knob):
    # A schedd that accepts the connection and then says nothing, as one grouping a large
    # queue on a busy host does until it is done. HTCondor gives up after 20 s; csctl's
    # [pool] timeout makes that 40 s here, also in a query process started before the
    # configuration was read.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        location = classad2.ClassAd(
            {
                "MyAddress": f"<127.0.0.1:{listener.getsockname()[1]}>",
                "MyType": "Scheduler",
                "Name": "mute",
                "CondorVersion": VERSION,
            }
        )
        with started_ahead():
            htcondor2.param[TIMEOUT_KNOB] = "2"
            started = time.monotonic()
            with pytest.raises(htcondor2.HTCondorException):
                query_apart(htcondor2, location, "true", ["ClusterId"], 0, {})
            waited = time.monotonic() - started
    assert 38 <= waited < 60, waited


def test_a_drain_keeps_htcondor_s_own_wait(knob):
    # drains go to the VMs one after another: a VM whose startd accepts and never answers
    # holds a retire for HTCondor's 20 s, not for the pool's longer query timeout
    pool = HTCondorPool(PoolConfig(name="p", collector="127.0.0.1:9", timeout=120))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        target = DrainTarget("vm-1", f"<127.0.0.1:{listener.getsockname()[1]}>", "not.a.token", "k")
        started = time.monotonic()
        results = pool.drain([target], "test")
        waited = time.monotonic() - started
    assert results["vm-1"] and results["vm-1"].startswith("drain refused or unreachable")
    assert 15 <= waited < 35, waited
    assert htcondor2.param[TIMEOUT_KNOB] == "6"  # and the queries' wait is back


def test_a_refused_query_raises_the_in_process_message():
    location = _nobody_listens()
    with pytest.raises(htcondor2.HTCondorException) as here:
        htcondor2.Schedd(location).query("true", ["ClusterId"])
    with pytest.raises(htcondor2.HTCondorException) as apart:
        query_apart(htcondor2, location, "true", ["ClusterId"], 0, {})
    assert str(apart.value) == str(here.value) != ""


@pytest.mark.pool
def test_grouped_idle_jobs_are_the_same_apart_and_in_process(clean_queue, pool_config):
    clean_queue.submit({"executable": "/bin/true", "request_memory": "700"}, count=3)
    clean_queue.submit({"executable": "/bin/true", "request_cpus": "2", "+VMType": '"small"'}, count=2)
    pool = HTCondorPool(pool_config.pool)
    (location,) = pool.schedd_ads()
    projection = [*SIGNIFICANT_ATTRS, "JobStatus"]
    grouped = int(htcondor2.QueryOpt.GroupBy)
    here = htcondor2.Schedd(location).query("JobStatus == 1", projection, opts=grouped)
    apart = query_apart(htcondor2, location, "JobStatus == 1", projection, grouped, {})
    assert len(apart) == 2 and sorted(map(str, apart)) == sorted(map(str, here))

    # the snapshot asks from a worker thread: there the query runs apart, with the same groups
    main = pool.idle_jobs()
    found = []
    worker = threading.Thread(target=lambda: found.append(pool.idle_jobs()))
    worker.start()
    worker.join()
    assert [(str(g.ad), g.count, g.sample_ids, g.schedd) for g in found[0].groups] == [
        (str(g.ad), g.count, g.sample_ids, g.schedd) for g in main.groups
    ]
    assert sorted(g.count for g in main.groups) == [2, 3]
