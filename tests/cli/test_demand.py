import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from csctl.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent.parent

JOBS = [
    {
        "ClusterId": 1,
        "ProcId": p,
        "JobStatus": 1,
        "Owner": "alice",
        "Requirements": '/Expr(VMType =?= "pandacernvm" && Target.Arch == "X86_64")/',
        "VMMem": "18000",
        "VMCPUCores": 8,
        "TargetClouds": "FGHotel,Hermes",
        "RequestCpus": 1,
    }
    for p in range(9)
] + [
    {"ClusterId": 2, "ProcId": 0, "JobStatus": 1, "Owner": "bob", "VMMem": "lots"},
    {"ClusterId": 3, "ProcId": 0, "JobStatus": 1, "Owner": "bob", "Requirements": "/Expr(foo &&)/"},
    {"ClusterId": 4, "ProcId": 0, "JobStatus": 1, "Owner": "carol", "TargetClouds": "Nowhere"},
    {"ClusterId": 5, "ProcId": 0, "JobStatus": 2, "Owner": "dave"},
]


def snapshot(tmp_path: Path, jobs=JOBS) -> Path:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    return path


def test_table_and_summary(csctl, tmp_path):
    result = csctl("demand", "--from-file", str(snapshot(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert "pandacernvm" in result.stdout
    assert "12 idle jobs: 9 servable, 2 new VMs needed" in result.stdout
    assert "3 jobs no VM type can serve (see --explain)" in result.stdout


def test_explain_lists_reasons_per_job(csctl, tmp_path):
    result = csctl("demand", "--from-file", str(snapshot(tmp_path)), "--explain")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "1 job(s) of bob (2.0):" in lines
    assert '  - VMMem: expected a number of MB, got "lots"' in lines
    assert "  - Requirements: expression does not parse" in lines
    assert "  - TargetClouds names unknown cloud(s) Nowhere (known: FGHotel, Hermes)" in lines


def test_json_schema(csctl, tmp_path):
    result = csctl("demand", "--from-file", str(snapshot(tmp_path)), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["schema"] == "csctl.demand/1"
    assert data["idle_jobs"] == 12 and data["vms_needed"] == 2
    (req,) = data["requirements"]
    assert req["vm_type"] == "pandacernvm" and req["clouds"] == ["FGHotel", "Hermes"]
    assert req["idle_jobs"] == 9 and req["vms_needed"] == 2
    assert {r["owner"] for r in data["rejected"]} == {"bob", "carol"}


def test_json_also_accepted_before_the_command(csctl, tmp_path):
    result = csctl("--json", "demand", "--from-file", str(snapshot(tmp_path)))
    assert json.loads(result.stdout)["schema"] == "csctl.demand/1"


def test_snapshot_that_is_not_json(csctl, tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text("-- condor_q text --")
    result = csctl("demand", "--from-file", str(path))
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(f"error: {path}: cannot read job snapshot: Expecting value")


def test_snapshot_not_an_array(csctl, tmp_path):
    result = csctl("demand", "--from-file", str(snapshot(tmp_path, {"a": 1})))
    assert result.exit_code == ExitCode.USAGE
    assert "expected a JSON array of job ads (condor_q -json output)" in result.stderr


def test_bad_config_is_exit_3_one_line_per_problem(csctl, tmp_path):
    bad = tmp_path / "csctl.toml"
    bad.write_text('[pool]\nname = "p"\n')
    result = csctl("demand", "--from-file", str(snapshot(tmp_path)), config=bad)
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {bad}: pool.collector: required key is missing\n"


def test_pool_unreachable(csctl, tmp_path):
    config = tmp_path / "csctl.toml"
    config.write_text('[pool]\nname = "p"\ncollector = "127.0.0.1:1"\n')
    result = csctl("demand", config=config)
    assert result.exit_code == ExitCode.POOL_UNREACHABLE
    assert result.stderr.startswith("error: cannot query collector 127.0.0.1:1")
    assert len(result.stderr.splitlines()) == 2  # the error and its hint


def test_values_from_jobs_are_escaped_and_cut_on_the_terminal(csctl, tmp_path):
    owner = "\x1b[31mred\x1b[0m\nfake line" + "x" * 1_000
    jobs = [{"ClusterId": 7, "ProcId": 0, "Owner": owner, "VMType": "\x1b[2J" + "y" * 60_000}]
    result = csctl("demand", "--from-file", str(snapshot(tmp_path, jobs)), "--explain")
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 310
    lines = result.stdout.splitlines()
    assert lines[-2].startswith("1 job(s) of \\e[31mred\\e[0m\\nfake linexxx") and lines[-2].endswith(
        "… (7.0):"
    )
    assert lines[-1].startswith('  - VMType "\\e[2Jyyy') and "…" in lines[-1]


def test_explain_names_filesystem_domain_for_shared_file_system_jobs(csctl, tmp_path):
    jobs = [
        {
            "ClusterId": 8,
            "ProcId": 0,
            "Owner": "erin",
            "FileSystemDomain": "cluster.example.org",
            # condor_submit's should_transfer_files = NO
            "Requirements": "/Expr(TARGET.FileSystemDomain == MY.FileSystemDomain)/",
        }
    ]
    result = csctl("demand", "--from-file", str(snapshot(tmp_path, jobs)), "--explain")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        "  - Requirements is false on VM type pandacernvm (refers to TARGET.FileSystemDomain, "
        "which the VM type does not define); set pool.filesystem_domain in the configuration "
        "to the pool's FILESYSTEM_DOMAIN"
    )


def test_a_hostile_file_still_serves_the_other_jobs(csctl, tmp_path):
    blacklist = " && ".join(f'Machine != "wn{i}"' for i in range(400))
    jobs = [
        *JOBS[:9],
        {"ClusterId": 20, "ProcId": 0, "Owner": "al\ud800ice"},
        {"ClusterId": 21, "ProcId": 0, "RequestCpus": 2**63},
        {"ClusterId": 22, "ProcId": 0, "Requirements": f"/Expr({blacklist})/", "RequestCpus": 1},
        {
            "ClusterId": 23,
            "ProcId": 0,
            "RequestMemory": "/Expr(RequestDisk)/",
            "RequestDisk": "/Expr(RequestMemory)/",
        },
    ]
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))  # the surrogate travels as \ud800, as condor_q may write it
    result = csctl("demand", "--from-file", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["idle_jobs"] == 13 and sum(r["idle_jobs"] for r in data["requirements"]) == 10
    assert sorted(r["reasons"][0] for r in data["rejected"]) == [
        "Owner: contains a lone UTF-16 surrogate",
        "RequestCpus: integer 9223372036854775808 is out of the 64-bit range",
        "RequestMemory: refers to itself through other attributes (a circle)",
    ]


def test_each_owners_need_is_shown_and_read_back_by_boot(csctl, tmp_path):
    erin = [
        {**JOBS[0], "ClusterId": 6, "ProcId": p, "Owner": "erin", "AcctGroup": "group_cms"} for p in range(16)
    ]
    path = snapshot(tmp_path, JOBS + erin)  # 25 jobs, eight to a VM: 4 VMs, split 9:16
    result = csctl("--json", "demand", "--from-file", str(path))
    data = json.loads(result.stdout)
    assert data["need_by_owner"] == {"alice": 1, "group_cms": 3}
    assert [r["need_by_owner"] for r in data["requirements"]] == [{"alice": 1, "group_cms": 3}]
    text = csctl("demand", "--from-file", str(path)).stdout
    assert "new VMs by owner" in text
    rows = [line.replace("│", " ").split() for line in text.splitlines()]
    assert [r for r in rows if r[:1] in (["alice"], ["group_cms"])] == [["alice", "1"], ["group_cms", "3"]]
    # boot reads the same output back, owners and all
    plan = json.loads(csctl("--json", "boot", "--dry-run", "--demand", "-", input=result.stdout).stdout)
    assert sorted(o["owner"] for o in plan["owners"]) == ["alice", "group_cms"]


def test_an_invalid_configuration_is_reported_at_once_whatever_the_collector_does(tmp_path):
    """demand sends its query before it validates the whole file (csctl/config_early.py;
    tests/engine/test_services.py shows it goes out); a collector that never answers must
    not hold up the configuration's error."""
    config = tmp_path / "csctl.toml"
    with socket.socket() as collector:
        collector.bind(("127.0.0.1", 0))
        collector.listen(8)
        port = collector.getsockname()[1]
        config.write_text(f'[pool]\nname = "p"\ncollector = "127.0.0.1:{port}"\n[vm_types.small]\ncpus = 0\n')
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "csctl", "--config", str(config), "demand"],
            cwd=ROOT,
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
    assert result.returncode == ExitCode.CONFIG
    assert result.stderr.startswith(f"error: {config}: vm_types.small.cpus: expected an integer >= 1")
    assert took < 10, took  # not the collector's 60 s
