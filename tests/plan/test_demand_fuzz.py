"""Hostile job ads and condor_q -json files: nothing escapes compute_demand or
groups_from_json, every job is accounted for, and a good job among them is served."""

from __future__ import annotations

import classad2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csctl.model import JobGroup
from csctl.plan.demand import compute_demand
from csctl.plan.jobs import NEEDS_ATTRS, SIGNIFICANT_ATTRS
from csctl.plan.queue import groups_from_json
from tests.conftest import EXAMPLE_CONFIG

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
GOOD = {"ClusterId": 9999, "ProcId": 0, "JobStatus": 1, "Owner": "good", "RequestCpus": 1}

names = st.sampled_from([*SIGNIFICANT_ATTRS, "A", "B"])
atoms = st.one_of(
    st.sampled_from(
        ["A", "B", "RequestCpus", "TARGET.Cpus", "MY.RequestMemory", "Machine", "undefined", "error"]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(['"\ud800"', "9223372036854775808", "1e400", "(", ")", "]; [", "{1, 2}", "[a = 1].a"]),
)
operators = st.sampled_from([" && ", " || ", " + ", " == ", " =?= ", " ? 1 : ", " / ", "&&", " . ", " "])


@st.composite
def expressions(draw) -> str:
    parts = [draw(atoms)]
    for _ in range(draw(st.integers(0, 6))):
        parts += [draw(operators), draw(atoms)]
    text = "".join(parts)
    if draw(st.booleans()):  # now and then something long: a chain or a blacklist
        text = draw(st.sampled_from([" && ", " + ", " || "])).join([text] * draw(st.integers(1, 600)))
    return text


values = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=40),
    st.sampled_from(["a\ud800b", "\udfff", "\x1b[31m", "x\x00y", "x" * 70_000]),
    expressions().map(lambda e: f"/Expr({e})/"),
    st.lists(st.integers(), max_size=2),
    st.none(),
)
jobs = st.fixed_dictionaries(
    {"ClusterId": st.integers(1, 50), "ProcId": st.integers(0, 5)},
    optional={"JobStatus": st.sampled_from([1, 1, 1, 2, "x"])},
).flatmap(lambda ids: st.dictionaries(names, values, max_size=6).map(lambda attrs: {**attrs, **ids}))


@pytest.fixture(scope="module")
def config():
    from csctl.config import load_config

    return load_config(EXAMPLE_CONFIG)


@FUZZ
@given(st.lists(jobs, max_size=6))
def test_hostile_condor_q_json(config, hostile):
    data = [*hostile, GOOD]
    idle = sum(1 for j in data if j.get("JobStatus", 1) == 1)
    groups = groups_from_json(data, "q")
    assert sum(g.count for g in groups) == idle
    demand = compute_demand(groups, [], config)
    served = sum(r.idle_jobs for r in demand.requirements)
    assert served + sum(r.jobs for r in demand.rejected) == demand.idle_jobs == idle
    assert any("good" in r.owners for r in demand.requirements)
    for r in demand.rejected:
        assert len(r.reasons) >= 1 and all("\n" not in x and "\x1b" not in x for x in r.reasons)


def _ad(attrs: dict) -> classad2.ClassAd | None:
    """A ClassAd as a schedd would hand it over (the library accepted every value)."""
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0})
    for name, text in attrs.items():
        try:
            ad[name] = classad2.ExprTree(text)
        except Exception:  # noqa: BLE001 - what the library cannot parse no schedd sends
            continue
    return ad


@FUZZ
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([*NEEDS_ATTRS, "Requirements", "A", "B"]),
            expressions().filter(lambda e: "\ud800" not in e),
            max_size=5,
        ),
        max_size=5,
    )
)
def test_hostile_schedd_ads(config, hostile):
    groups = [JobGroup(_ad(attrs), 2, ["1.0"]) for attrs in hostile]
    good = classad2.ClassAd({"ClusterId": 9, "ProcId": 0, "Owner": "good"})
    groups.append(JobGroup(good, 1, ["9.0"]))
    demand = compute_demand(groups, [], config)
    served = sum(r.idle_jobs for r in demand.requirements)
    assert served + sum(r.jobs for r in demand.rejected) == demand.idle_jobs == 2 * len(hostile) + 1
    assert any("good" in r.owners for r in demand.requirements)
