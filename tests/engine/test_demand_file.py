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


def test_a_condor_submit_25_requirements_is_matched_in_a_process_without_the_pool(tmp_path):
    """condor_submit >= 25 writes versionGE(split(...)) into Requirements: HTCondor's own
    ClassAd functions, registered by its library. `demand --from-file` asks no pool, so it
    must load them itself (a fresh process: nothing else has loaded them)."""
    import subprocess
    import sys

    requirements = (
        '(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && '
        '(versionGE(split(TARGET.CondorVersion)[1],"25.12.0") || (TARGET.Disk >= RequestDisk)) && '
        "(TARGET.Memory >= RequestMemory)"
    )
    jobs = tmp_path / "jobs.json"
    ad = {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "Owner": "alice", "RequestCpus": 1}
    ad |= {"RequestMemory": 100, "RequestDisk": 1000, "Requirements": f"/Expr({requirements})/"}
    jobs.write_text(json.dumps([ad]))
    config = tmp_path / "csctl.toml"
    config.write_text(
        '[pool]\nname = "pool.test"\ncollector = "127.0.0.1:1"\n'
        '[clouds.A]\ndriver = "local"\nwork_dir = "/nonexistent"\n'
        '[vm_types.std]\ncpus = 2\nmemory = 2000\ndisk = 10\nimages = { A = "img" }\n'
    )
    argv = ["--config", str(config), "--json", "demand", "--from-file", str(jobs)]
    run = subprocess.run(
        [sys.executable, "-m", "csctl", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    demand = json.loads(run.stdout)
    assert demand["rejected"] == [] and [r["vm_type"] for r in demand["requirements"]] == ["std"], demand
