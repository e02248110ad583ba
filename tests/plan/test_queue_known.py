"""What an ad built from ``condor_q -json`` remembers of its JSON (its names, integer and
plain string values, the jobs' listing of names) gives the answers the library gives."""

from __future__ import annotations

import dataclasses

import classad2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csctl.config import parse_config
from csctl.model import JobGroup
from csctl.plan import guard
from csctl.plan.demand import _owner, _share_key, compute_demand
from csctl.plan.jobs import NEEDS_ATTRS
from csctl.plan.matching import evaluated_attributes
from csctl.plan.queue import JsonQueue, groups_from_json

CONFIG = """
[pool]
name = "pool.test"
collector = "127.0.0.1"
[clouds.A]
driver = "local"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = { A = "img" }
"""
SETTINGS = settings(max_examples=80, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG)


def asked(group: JobGroup) -> JobGroup:
    """The same group with an ordinary ad of the same text: every value read from the library."""
    plain = classad2.ClassAd()
    plain.update(group.ad)
    assert guard.known_values(plain) is None
    return dataclasses.replace(group, ad=plain)


def job(proc: int, **attrs) -> dict:
    return {"ClusterId": 1, "ProcId": proc, "JobStatus": 1, **attrs}


def test_known_values_are_the_ads_own():
    data = [
        job(
            0,
            Owner="alice",
            AcctGroup='group "q"\\x',
            RequestCpus=2,
            RequestMemory=2048.5,
            RequestDisk="/Expr(DiskUsage * 2)/",
            DiskUsage=100,
            VMType="big",
            TargetClouds="A, B",
            VMJobPerCore=False,
            VMAMI="é-image",
        )
    ]
    (group,) = groups_from_json(data, "jobs.json")
    known = guard.known_values(group.ad)
    assert known is not None
    assert set(known) == set(group.ad)
    for name, value in known.items():
        if value is not guard.ASK:
            assert group.ad[name] == value and type(group.ad[name]) is type(value), name
    # a string with quotes, backslashes or non-ASCII letters is left to the library to read
    assert known["AcctGroup"] is guard.ASK and known["VMAMI"] is guard.ASK
    assert known["Owner"] == "alice" and known["RequestCpus"] == 2 and known["RequestDisk"] is guard.ASK
    assert evaluated_attributes(group.ad, NEEDS_ATTRS) == evaluated_attributes(asked(group).ad, NEEDS_ATTRS)


plain_or_not = st.one_of(
    st.text(alphabet="abcXYZ019_.@+-", max_size=12),
    st.text(max_size=12).filter(lambda s: guard.string_problem(s) is None),
)
values = st.one_of(st.integers(-(2**63), 2**63 - 1), plain_or_not, st.booleans(), st.floats(-1e9, 1e9))


@SETTINGS
@given(
    owners=st.lists(plain_or_not, min_size=2, max_size=4),
    extra=st.dictionaries(st.sampled_from(NEEDS_ATTRS), values),
)
def test_every_group_reads_as_the_library_reads_it(owners, extra):
    # jobs listing the same names (one remembered layout) but holding different values:
    # each keeps its own values, read as from an ordinary ad
    data = [job(i, Owner=owner, AcctGroup=owner[::-1], **extra) for i, owner in enumerate(owners)]
    for group in groups_from_json(data, "jobs.json"):
        plain = asked(group)
        assert evaluated_attributes(group.ad, NEEDS_ATTRS) == evaluated_attributes(plain.ad, NEEDS_ATTRS)
        assert _owner(group) == _owner(plain)
        assert _share_key(group, _owner(group)) == _share_key(plain, _owner(plain))


def test_a_remembered_listing_keeps_each_jobs_own_order_and_values():
    queue = JsonQueue("jobs.json")
    first = job(0, RequestMemory=1, Owner="a", RequestCpus=1)
    again = job(1, RequestMemory=2, Owner="b", RequestCpus=1)  # same listing, other values
    other = {"RequestCpus": 1, "Owner": "a", "RequestMemory": 1, "ProcId": 2, "ClusterId": 1}  # other order
    for raw in (first, again, other):
        queue.add(raw)
    items = [m.items() for m in queue._groups.values()]
    assert items == [
        [("RequestMemory", 1), ("Owner", "a"), ("RequestCpus", 1)],
        [("RequestMemory", 2), ("Owner", "b"), ("RequestCpus", 1)],
    ]
    # the third job is the first one's group (same values), counted there
    assert [m.count for m in queue._groups.values()] == [2, 1]


def test_demand_is_the_same_whether_values_are_remembered_or_asked(config):
    data = [
        job(
            i,
            Owner=("alice", 'o"brien', "bob")[i % 3],
            RequestCpus=1 + i % 3,
            RequestMemory=1000 + 500 * (i % 7),
            RequestDisk="/Expr(DiskUsage)/",
            DiskUsage=1000 + i,
            Requirements=f'/Expr((TARGET.Memory >= RequestMemory) && (TARGET.Machine != "wn{i}"))/',
            **({"AcctGroup": "physics"} if i % 4 == 0 else {}),
            **({"VMType": "nope"} if i % 11 == 0 else {}),
        )
        for i in range(60)
    ]
    groups = groups_from_json(data, "jobs.json")
    assert compute_demand(groups, [], config) == compute_demand([asked(g) for g in groups], [], config)


def test_a_listing_of_long_names_is_not_remembered_but_read_alike():
    queue = JsonQueue("jobs.json")
    dropped = {f"Unknown{i}" + "x" * 1_000: i for i in range(3)}  # names csctl does not read
    queue.add(job(0, Owner="a", **dropped))
    queue.add(job(1, Owner="a", RequestCpus=1))
    assert len(queue._layouts) == 1  # the short listing only: memory stays bounded
    assert [m.items() for m in queue._groups.values()] == [
        [("Owner", "a")],
        [("Owner", "a"), ("RequestCpus", 1)],
    ]
