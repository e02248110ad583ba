"""Idle jobs into autoclusters, from ClassAds or from ``condor_q -json`` data."""

import classad2
import pytest

from csctl.model import JobProblem
from csctl.plan.queue import SAMPLE_IDS, group_ads, groups_from_json


def ad(cluster: int, proc: int, **attrs) -> classad2.ClassAd:
    return classad2.ClassAd({"ClusterId": cluster, "ProcId": proc, "JobStatus": 1, **attrs})


def test_jobs_differing_only_in_their_ids_form_one_group():
    ads = [ad(1, p, Owner="alice", RequestCpus=1) for p in range(3)] + [ad(2, 0, Owner="bob", RequestCpus=1)]
    groups = group_ads(ads, schedd="schedd@a")
    assert [(g.count, g.sample_ids, g.schedd) for g in groups] == [
        (3, ["1.0", "1.1", "1.2"], "schedd@a"),
        (1, ["2.0"], "schedd@a"),
    ]
    assert groups[0].ad["Owner"] == "alice" and groups[0].problem is None


def test_any_other_attribute_splits_a_group():
    groups = group_ads([ad(1, 0, RequestCpus=1), ad(1, 1, RequestCpus=2), ad(1, 2, RequestCpus=1)])
    assert [(g.count, g.sample_ids) for g in groups] == [(2, ["1.0", "1.2"]), (1, ["1.1"])]


def test_a_group_keeps_only_a_few_sample_ids():
    (group,) = group_ads([ad(7, p) for p in range(SAMPLE_IDS + 3)])
    assert group.count == SAMPLE_IDS + 3
    assert group.sample_ids == [f"7.{p}" for p in range(SAMPLE_IDS)]


def test_an_ad_without_ids_is_named_by_question_marks():
    (group,) = group_ads([classad2.ClassAd({"Owner": "x"})])
    assert group.sample_ids == ["?.?"]


def test_condor_q_json_expressions_become_expressions():
    data = [
        {
            "ClusterId": 1,
            "ProcId": p,
            "JobStatus": 1,
            "Requirements": '/Expr(VMType =?= "big")/',
            "VMMem": "18000",
        }
        for p in range(2)
    ]
    (group,) = groups_from_json(data, source="jobs.json")
    assert (group.count, group.sample_ids, group.schedd) == (2, ["1.0", "1.1"], "jobs.json")
    assert isinstance(group.ad.lookup("Requirements"), classad2.ExprTree)
    requirements = group.ad.lookup("Requirements")
    assert requirements.eval(scope=classad2.ClassAd({"VMType": "big"})) is True
    assert requirements.eval(scope=classad2.ClassAd({"VMType": "small"})) is False
    assert group.ad["VMMem"] == "18000"


def test_only_idle_jobs_and_only_the_projection_are_kept():
    data = [
        {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "Cmd": "/bin/a", "Owner": "alice"},
        {"ClusterId": 1, "ProcId": 1, "JobStatus": 2, "Owner": "alice"},  # running
        {"ClusterId": 1, "ProcId": 2, "JobStatus": 5, "Owner": "alice"},  # held
        {"ClusterId": 1, "ProcId": 3, "Cmd": "/bin/b", "Owner": "alice"},  # no status: idle
        "not a job ad",
    ]
    (group,) = groups_from_json(data, source="q")
    # Cmd is outside the projection, so the two idle jobs group despite different commands
    assert (group.count, group.sample_ids) == (2, ["1.0", "1.3"])
    assert "Cmd" not in group.ad


def test_unreadable_attributes_become_one_problem_per_job():
    data = [
        {"ClusterId": 3, "ProcId": 0, "Owner": "bob", "Requirements": "/Expr(foo &&)/"},
        {"ClusterId": 4, "ProcId": 1, "Owner": "carol", "VMMem": [1, 2]},
        {"ClusterId": 5, "ProcId": 0, "Owner": "dave", "RequestCpus": 1},
    ]
    groups = groups_from_json(data, source="q")
    assert [(g.sample_ids, g.problem) for g in groups] == [
        (["5.0"], None),  # the readable groups come first
        (["3.0"], JobProblem("Requirements", "expression does not parse")),
        (["4.1"], JobProblem("VMMem", "unsupported JSON value list")),
    ]
    assert groups[1].ad["Owner"] == "bob" and "Requirements" not in groups[1].ad


@pytest.mark.parametrize("data", [{"ClusterId": 1}, "jobs", 42, None])
def test_data_that_is_not_an_array_raises_value_error(data):
    with pytest.raises(ValueError, match=r"^expected a JSON array of job ads \(condor_q -json output\)$"):
        groups_from_json(data, source="q")


def test_an_empty_queue_has_no_groups():
    assert groups_from_json([], source="q") == []
