"""Schedd queries in a child process answer exactly what the same query in-process does.

htcondor2 holds the GIL for a whole query, so the queries a snapshot overlaps with other
work run in child processes (csctl/pool/child.py); these tests hold the two paths to the
same ads and the same errors.
"""

from __future__ import annotations

import socket
import threading

import classad2
import htcondor2
import pytest

from csctl.plan.jobs import SIGNIFICANT_ATTRS
from csctl.pool.child import query_apart
from csctl.pool.htcondor import HTCondorPool

VERSION = "$CondorVersion: 23.9.6 2024-07-02 BuildID: Debian-23.9.6 PackageID: 23.9.6 $"


def _nobody_listens() -> classad2.ClassAd:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return classad2.ClassAd(
        {"MyAddress": f"<127.0.0.1:{port}>", "MyType": "Scheduler", "Name": "gone", "CondorVersion": VERSION}
    )


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
