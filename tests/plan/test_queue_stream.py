"""A ``condor_q -json`` text read one element at a time: the same groups as decoding it
whole, whatever the chunk size, and json's errors for text that is not an array."""

from __future__ import annotations

import io
import json

import pytest

from csctl.model import JobProblem
from csctl.plan.queue import JsonQueue, groups_from_json, read_json_queue

JOBS = [
    {"ClusterId": 1, "ProcId": p, "JobStatus": 1, "Owner": "alice", "RequestCpus": 1 + p % 2}
    for p in range(6)
] + [
    {"ClusterId": 2, "ProcId": 0, "Owner": "bob", "Requirements": '/Expr(Machine != "a,]}[{")/'},
    {"ClusterId": 2, "ProcId": 1, "Owner": "bob", "VMMem": [1, {"x": "]"}]},
    {"ClusterId": 3, "ProcId": 0, "Owner": "carol", "RequestMemory": 123456789012},
    {"ClusterId": 3, "ProcId": 1, "Owner": "carol", "RequestMemory": 1.5e3},
    "not a job",
    12345678,
    None,
]


def summary(groups) -> list[tuple]:
    return [(g.count, g.sample_ids, g.schedd, g.problem, g.ad.printOld()) for g in groups]


def read(text: str, chunk: int) -> JsonQueue:
    return read_json_queue(io.StringIO(text).read, "q", chunk=chunk)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 3])
def test_any_chunk_size_gives_the_groups_of_the_whole_text(chunk, indent):
    text = json.dumps(JOBS, indent=indent)
    assert summary(read(text, chunk)) == summary(groups_from_json(json.loads(text), "q"))


def test_a_number_cut_by_a_chunk_is_read_whole():
    text = json.dumps([12345678, {"ClusterId": 1, "ProcId": 0, "RequestCpus": 3}])
    (group,) = read(text, 4)
    assert group.ad["RequestCpus"] == 3


def test_an_empty_array_and_surrounding_white_space():
    assert list(read("  \n[ ]\n ", 2)) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{}", "Expecting ',' delimiter (char 3)"),
        ("[{} {}]", "Expecting ',' delimiter (char 4)"),
        ("[{},]", "Expecting value (char 4)"),
        ("[", "Expecting value (char 1)"),
        ('[{"a": }]', "Expecting value (char 7)"),
        ("[] x", "Extra data (char 3)"),
    ],
)
def test_broken_arrays_are_value_errors_with_their_position(text, message):
    for chunk in (1, 3, 1 << 20):
        with pytest.raises(ValueError) as info:
            list(read(text, chunk))
        assert str(info.value) == message


@pytest.mark.parametrize("text", ['{"jobs": []}', '"jobs"', "3", "null"])
def test_json_that_is_not_an_array_is_the_usual_value_error(text):
    with pytest.raises(ValueError, match=r"^expected a JSON array of job ads \(condor_q -json output\)$"):
        read(text, 2)


def test_text_that_is_not_json_keeps_json_s_message():
    with pytest.raises(ValueError, match=r"^Expecting value: line 1 column 1 \(char 0\)$"):
        read("-- condor_q text --", 4)


def test_one_true_and_1_0_are_three_groups_and_order_does_not_split_one():
    jobs = [
        {"ProcId": 0, "RequestCpus": 1, "Owner": "a"},
        {"Owner": "a", "RequestCpus": 1, "ProcId": 1},
        {"ProcId": 2, "RequestCpus": 1.0, "Owner": "a"},
        {"ProcId": 3, "RequestCpus": True, "Owner": "a"},
    ]
    groups = groups_from_json(jobs, "q")
    assert [(g.count, g.sample_ids) for g in groups][:1] == [(2, ["?.0", "?.1"])]
    assert len(groups) == 3


def test_the_first_bad_attribute_in_the_job_s_own_order_is_reported():
    jobs = [{"VMMem": [1], "RequestCpus": {"x": 1}, "Owner": "a"}]
    (group,) = groups_from_json(jobs, "q")
    assert group.problem == JobProblem("VMMem", "unsupported JSON value list")


def test_groups_are_iterated_readable_first_and_can_be_iterated_again():
    queue = JsonQueue("q")
    for job in [{"ProcId": 0, "VMMem": [1]}, {"ProcId": 1, "RequestCpus": 2}]:
        queue.add(job)
    assert len(queue) == 2
    first = [(g.sample_ids, g.problem is None) for g in queue]
    assert first == [(["?.1"], True), (["?.0"], False)]
    assert [(g.sample_ids, g.problem is None) for g in queue] == first
