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
import time
from collections.abc import Iterator
from contextlib import contextmanager

import classad2
import htcondor2
import pytest

from csctl.config import PoolConfig
from csctl.config_early import EarlyPool
from csctl.errors import PoolUnreachable
from csctl.pool import child
from csctl.pool.child import CollectorFailed, query_apart, query_located, started_ahead
from csctl.pool.htcondor import HTCondorPool
from csctl.pool.idle import GROUP_BY, IDLE_CONSTRAINT, IDLE_PROJECTION, groups, query_ahead
from tests.pool.test_child import VERSION, _nobody_listens


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


def _mute_schedd(listener: socket.socket) -> classad2.ClassAd:
    """A schedd that accepts the connection and never answers."""
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    address = f"<127.0.0.1:{listener.getsockname()[1]}>"
    return classad2.ClassAd(
        {"MyAddress": address, "MyType": "Scheduler", "Name": "mute", "CondorVersion": VERSION}
    )


@contextmanager
def query_in_flight() -> Iterator[list[tuple[str, float]]]:
    """A query of a schedd that never answers, in flight in a thread of its own for the
    duration of the block; then the list of (its error, seconds it took), once it ended."""
    failed: list[tuple[str, float]] = []

    def ask(location: classad2.ClassAd) -> None:
        started = time.monotonic()
        try:
            query_apart(htcondor2, location, "true", ["ClusterId"], 0, {})
        except htcondor2.HTCondorException as exc:
            failed.append((str(exc), time.monotonic() - started))

    with socket.socket() as listener:
        thread = threading.Thread(target=ask, args=(_mute_schedd(listener),))
        thread.start()
        deadline = time.monotonic() + 10
        while not child._in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # the query is out: HTCondor would wait 20 s or more for its answer
        yield failed
        thread.join(10)
    assert not thread.is_alive()


def test_a_query_in_flight_is_killed_on_request():
    with query_in_flight() as failed:
        child.end_queries_in_flight()
    [(message, waited)] = failed
    assert message.startswith("query process ended with status -9") and waited < 5
    assert not child._in_flight


def test_the_process_started_ahead_serves_a_pool_with_the_condor_params_it_was_started_with():
    params = {"TOOL_DEBUG": "D_ALWAYS"}
    with started_ahead(params):
        assert child._ahead is not None
        ahead = child._ahead[0]
        assert _refusal(params) != ""
    assert ahead.returncode == child.REFUSED


def test_a_host_without_htcondor_configuration_keeps_its_process_started_ahead(monkeypatch):
    # htcondor2 sets CONDOR_CONFIG=/dev/null in this process when it finds no
    # configuration; a process started before that was imported does the same for itself
    monkeypatch.delenv("CONDOR_CONFIG", raising=False)
    with started_ahead():
        assert child._ahead is not None
        ahead = child._ahead[0]
        monkeypatch.setenv("CONDOR_CONFIG", os.devnull)
        assert _refusal({}) != ""
    assert ahead.returncode == child.REFUSED  # it ran the query itself
    monkeypatch.setenv("CONDOR_CONFIG", "/etc/condor/other_config")
    with started_ahead():
        assert child._ahead is not None
        ahead = child._ahead[0]
        monkeypatch.setenv("CONDOR_CONFIG", "/etc/condor/condor_config")
        assert _refusal({}) != ""
    assert ahead.returncode is not None and ahead.returncode < 0  # another configuration: unused


def test_a_query_sent_ahead_says_the_collector_failed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    query = query_located(f"127.0.0.1:{port}", [], IDLE_CONSTRAINT, IDLE_PROJECTION, GROUP_BY, {}, None)
    with pytest.raises(CollectorFailed) as failed:
        query.result()
    assert failed.value.message != "" and query.result() is None  # read once


def test_a_collector_that_fails_the_query_sent_ahead_is_asked_once():
    # asking again would wait as long again: a collector that does not answer holds each
    # attempt for the pool's whole timeout
    asked = []
    done = threading.Event()
    with socket.socket() as collector:
        collector.bind(("127.0.0.1", 0))
        collector.listen(8)
        collector.settimeout(0.1)

        def hang_up() -> None:  # ends with the test: a thread left running stops judging's forks
            while not done.is_set():
                try:
                    connection, _ = collector.accept()
                except TimeoutError:
                    continue
                asked.append(1)
                connection.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        try:
            address = EarlyPool("p", f"127.0.0.1:{collector.getsockname()[1]}")
            pool = HTCondorPool(address)
            pool.adopt_idle_jobs(query_ahead(address))
            with pytest.raises(PoolUnreachable) as unreachable:
                pool.idle_jobs()
        finally:
            done.set()
            thread.join()
    assert unreachable.value.message.startswith(f"cannot query collector {address.collector}: ")
    assert unreachable.value.hint and len(asked) == 1


def test_an_abandoned_query_s_process_is_killed():
    with socket.socket() as collector:
        collector.bind(("127.0.0.1", 0))
        collector.listen(8)
        query = query_located(
            f"127.0.0.1:{collector.getsockname()[1]}",
            [],
            IDLE_CONSTRAINT,
            IDLE_PROJECTION,
            GROUP_BY,
            {},
            None,
        )
        process = query._process
        query.abandon()
    assert process is not None and process.returncode is not None and process.returncode < 0
    assert query.result() is None and not child._in_flight


@pytest.mark.pool
def test_a_query_sent_ahead_locates_the_schedd_and_answers_as_the_pool_does(clean_queue, pool_config):
    clean_queue.submit({"executable": "/bin/true", "request_memory": "700"}, count=3)
    clean_queue.submit({"executable": "/bin/true", "request_cpus": "2"}, count=2)
    address = pool_config.pool
    with started_ahead():
        answer = query_ahead(address).result()
    assert answer is not None
    location, ads = answer
    pool = HTCondorPool(address)
    [located] = pool.schedd_ads()
    assert location["Name"] == located["Name"] and location["MyAddress"] == located["MyAddress"]
    asked = pool.idle_jobs()
    assert [(str(g.ad), g.count, g.schedd) for g in groups(ads, located["Name"]) or []] == [
        (str(g.ad), g.count, g.schedd) for g in asked.groups
    ]
    assert sorted(g.count for g in asked.groups) == [2, 3]
    # a schedd the collector does not know, by name: nothing, and the pool says why
    other = address.model_copy(update={"schedds": ["no-such-schedd"]})
    assert query_ahead(other).result() is None
    with pytest.raises(PoolUnreachable, match="knows no schedd named no-such-schedd"):
        HTCondorPool(other).idle_jobs()
