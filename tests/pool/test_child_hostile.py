"""Hostile job attributes cross the child-process query unchanged.

A snapshot's schedd queries run in a child process that hands the ads back as ClassAd
text (csctl/pool/child.py). Whatever a user puts in a job (terminal escapes and other
control characters, quotes, backslashes, brackets and semicolons, non-ASCII text, a
200 KB string, a Requirements of 2,000 clauses) must come back as the same values,
grouped the same way, as the in-process query reads them. (The schedd refuses a newline
or a carriage return in a value, so neither is tried.)
"""

from __future__ import annotations

import threading

import classad2
import htcondor2
import pytest

from csctl.plan.jobs import SIGNIFICANT_ATTRS
from csctl.pool.child import query_apart
from csctl.pool.htcondor import HTCondorPool

pytestmark = pytest.mark.pool

HOSTILE = [
    "\x1b[31mred\x1b[0m and a bell \x07",
    'a quote " a backslash \\ a bracket ] a semicolon ; a brace }',
    "a tab\tand a form feed\x0c",
    "non-ASCII: Ωμέγα ✓ 日本語",
    "x" * 200_000,
]


def test_hostile_values_come_back_the_same_from_the_child(clean_queue, pool_config):
    schedd = clean_queue.schedd()
    for value in HOSTILE:
        cluster = clean_queue.submit({"executable": "/bin/true", "+VMType": '"small"'})
        # the schedd reads an edit in the old ClassAd syntax: \" is its only escape
        schedd.edit(f"ClusterId == {cluster}", "VMType", '"' + value.replace('"', '\\"') + '"')
    blacklist = " && ".join(f'(TARGET.Machine != "wn{i}.example.org")' for i in range(2000))
    cluster = clean_queue.submit({"executable": "/bin/true"})
    schedd.edit(f"ClusterId == {cluster}", "Requirements", blacklist)

    pool = HTCondorPool(pool_config.pool)
    (location,) = pool.schedd_ads()
    projection = [*SIGNIFICANT_ATTRS, "JobStatus", "ClusterId", "ProcId"]
    here = htcondor2.Schedd(location).query("JobStatus == 1", projection)
    apart = query_apart(htcondor2, location, "JobStatus == 1", projection, 0, {})

    def values(ads: list[classad2.ClassAd]) -> list[tuple[str, str]]:
        return sorted((repr(ad.get("VMType")), str(ad.lookup("Requirements"))) for ad in ads)

    assert len(apart) == len(HOSTILE) + 1
    assert values(apart) == values(here)
    assert sorted(str(ad.get("VMType")) for ad in apart if "VMType" in ad) == sorted(HOSTILE)

    # and the snapshot's own reading, from a worker thread (apart) and the main thread
    main = pool.idle_jobs()
    found = []
    worker = threading.Thread(target=lambda: found.append(pool.idle_jobs()))
    worker.start()
    worker.join()
    assert sorted((str(g.ad), g.count) for g in found[0].groups) == sorted(
        (str(g.ad), g.count) for g in main.groups
    )
