"""Trace parsers: the Standard Workload Format and condor_history -json."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from csctl.engine.simulate.traces import parse_history, parse_swf, read_trace
from csctl.errors import InputError


def line(*values: float) -> str:
    return " ".join(str(v) for v in values)


# job, submit, wait, run, alloc, cpu, mem, req procs, req time, req mem, status, user, group, ...
FULL = line(1, 100, 5, 3600, 4, -1, -1, 8, 7200, 2048, 1, 12, 3, 1, 0, -1, -1, -1)


def test_swf_fields_become_the_job_ad():
    trace = parse_swf(["; Version: 2.2", "; MaxJobs: 1", FULL], "t.swf")
    [job] = trace.jobs
    assert (job.submit, job.run) == (100, 3600)
    # requested processors win over allocated ones; 2048 KB per processor x 8 = 16 MB
    assert dict(job.fields) == {"RequestCpus": 8, "RequestMemory": 16, "Owner": "u12"}
    assert trace.skipped == {}


def test_swf_unknowns_fall_back_or_skip():
    allocated_only = line(2, 50, -1, 60, 2, -1, -1, -1, -1, -1, 1, -1, -1, -1, 0, -1, -1, -1)
    no_run = line(3, 60, -1, -1, 2, -1, -1, -1, -1, -1, 5, 4, -1, -1, 0, -1, -1, -1)
    no_cpus = line(4, 70, -1, 10, -1, -1, -1, -1, -1, -1, 1, 4, -1, -1, 0, -1, -1, -1)
    trace = parse_swf([no_run, allocated_only + "  ; a comment after the fields", "", no_cpus])
    [job] = trace.jobs
    assert dict(job.fields) == {"RequestCpus": 2, "Owner": "unknown"}  # no memory asked
    assert trace.skipped == {"run time unknown": 1, "processors unknown": 1}


def test_swf_jobs_are_put_in_submit_order():
    later = line(1, 900, -1, 1, 1, -1, -1, 1, -1, -1, 1, 1, -1, -1, 0, -1, -1, -1)
    earlier = line(2, 10, -1, 1, 1, -1, -1, 1, -1, -1, 1, 2, -1, -1, 0, -1, -1, -1)
    assert [j.submit for j in parse_swf([later, earlier]).jobs] == [10, 900]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3", "t.swf:2: expected 18 fields, got 3"),
        (FULL.replace("3600", "x"), "t.swf:2: expected numbers"),
    ],
)
def test_swf_bad_lines_are_named(text, message):
    with pytest.raises(InputError) as caught:
        parse_swf(["; header", text], "t.swf")
    assert caught.value.message.startswith(message)


def test_history_ads_keep_the_vm_attributes():
    ads = [
        {
            "QDate": 1000,
            "RemoteWallClockTime": 120.0,
            "RequestCpus": 2,
            "RequestMemory": "/Expr(ifthenelse(MemoryUsage =!= undefined, MemoryUsage, 1))/",
            "Memory": 4096,
            "RequestDisk": 1000,
            "Owner": "alice",
            "AcctGroup": "atlas",
            "VMType": "std",
            "TargetClouds": "A",
            "JobStatus": 4,
            "ClusterId": 7,
        },
        {"QDate": 900, "RemoteWallClockTime": 0, "Owner": "bob", "JobStatus": 3},
        {"Owner": "carol"},
    ]
    trace = parse_history(json.dumps(ads), "h.json")
    [job] = trace.jobs
    assert (job.submit, job.run) == (1000, 120)
    fields = dict(job.fields)
    assert fields["RequestMemory"] == 4096  # the expression falls back to what was provisioned
    assert {k: fields[k] for k in ("Owner", "AcctGroup", "VMType", "TargetClouds")} == {
        "Owner": "alice",
        "AcctGroup": "atlas",
        "VMType": "std",
        "TargetClouds": "A",
    }
    assert "ClusterId" not in fields
    assert trace.skipped == {"removed": 1, "no QDate": 1}


def test_history_one_ad_per_line_and_gzip(tmp_path: Path):
    path = tmp_path / "h.jsonl.gz"
    lines = [json.dumps({"QDate": t, "RemoteWallClockTime": 5, "Owner": "a"}) for t in (30, 20)]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    trace = read_trace(path)
    assert (trace.format, [j.submit for j in trace.jobs]) == ("history", [20, 30])


def test_unreadable_trace_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="cannot read trace"):
        read_trace(tmp_path / "missing.swf")


def test_history_keeps_the_job_attributes_its_requirements_read():
    requirements = "/Expr((TARGET.FileSystemDomain == MY.FileSystemDomain) && (TARGET.Disk >= RequestDisk))/"
    ad = {
        "QDate": 10,
        "RemoteWallClockTime": 5,
        "Owner": "alice",
        "RequestDisk": 100,
        "Requirements": requirements,
        "FileSystemDomain": "site.example",
        "Iwd": "/home/alice",  # not read by Requirements: left behind
    }
    [job] = parse_history(json.dumps([ad]), "h.json").jobs
    fields = dict(job.fields)
    assert fields["FileSystemDomain"] == "site.example"
    assert "Iwd" not in fields
