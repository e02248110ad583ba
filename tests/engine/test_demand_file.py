"""read_job_file streams the file: the groups of decoding it whole, and one-line input
errors for whatever the file holds."""

from __future__ import annotations

import json

import pytest

from csctl.engine.demand import read_job_file
from csctl.errors import InputError
from csctl.plan.queue import groups_from_json


def test_a_file_larger_than_a_chunk_gives_the_groups_of_the_whole_text(tmp_path):
    jobs = [
        {
            "ClusterId": 1,
            "ProcId": p,
            "Owner": f"u{p % 7}",
            "RequestMemory": 1000 + p % 300,
            "Cmd": "x" * 5000,
        }
        for p in range(500)
    ]
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs, indent=1))
    assert path.stat().st_size > 2 * (1 << 20)
    got = [(g.count, g.sample_ids, g.ad.printOld()) for g in read_job_file(path)]
    assert got == [(g.count, g.sample_ids, g.ad.printOld()) for g in groups_from_json(jobs, str(path))]


def test_arrays_nested_too_deep_for_the_decoder_are_an_input_error(tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InputError) as info:
        read_job_file(path)
    assert info.value.message.startswith(f"{path}: cannot read job snapshot: maximum recursion depth")
