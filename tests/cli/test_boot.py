import json
from pathlib import Path

import pytest

from csctl.errors import ExitCode

CONFIG = """
state_dir = "{state}"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
[policy]
max_new_vms_per_cycle = 5
[clouds.A]
driver = "local"
work_dir = "{work}/A"
priority = 10
max_vms = 2
[clouds.B]
driver = "local"
work_dir = "{work}/B"
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = {{ A = "img-a", B = "img-b" }}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "csctl.toml"
    path.write_text(CONFIG.format(state=tmp_path / "state", work=tmp_path / "vms"))
    return path


def demand_json(vms: int) -> str:
    return json.dumps(
        {
            "schema": "csctl.demand/1",
            "idle_jobs": vms * 8,
            "vms_needed": vms,
            "rejected": [],
            "requirements": [
                {"vm_type": "big", "clouds": ["A", "B"], "idle_jobs": vms * 8, "vms_needed": vms}
            ],
        }
    )


def test_dry_run_plan_from_demand_on_stdin(csctl, config):
    result = csctl("boot", "--dry-run", "--demand", "-", config=config, input=demand_json(6))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "not booted: 1 big: policy.max_new_vms_per_cycle (5) reached" in lines
    assert lines[-1] == "5 VMs would be booted"


def test_dry_run_json_is_the_plan(csctl, config):
    result = csctl("--json", "boot", "--dry-run", "--demand", "-", config=config, input=demand_json(3))
    plan = json.loads(result.stdout)
    assert plan["schema"] == "csctl.bootplan/1" and plan["total"] == 3
    assert [(i["cloud"], i["count"], i["image"]) for i in plan["items"]] == [
        ("A", 2, "img-a"),
        ("B", 1, "img-b"),
    ]


def test_demand_that_is_not_csctl_output(csctl, config):
    result = csctl("boot", "--dry-run", "--demand", "-", config=config, input='{"jobs": []}')
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == (
        "error: <stdin>: expected csctl demand --json output (schema csctl.demand/1), got None\n"
    )


def test_boot_without_signing_key_is_a_config_error(csctl, config):
    result = csctl("boot", "--demand", "-", config=config, input=demand_json(1))
    assert result.exit_code == ExitCode.CONFIG
    assert result.stderr == f"error: {config}: pool.signing_key: required to boot VMs\n"


def test_signing_key_readable_by_others_is_refused(csctl, config, tmp_path):
    key = tmp_path / "POOL"
    key.write_bytes(b"\x01\x02")
    key.chmod(0o644)
    text = config.read_text().replace(
        'collector = "127.0.0.1:1"', f'collector = "127.0.0.1:1"\nsigning_key = "{key}"'
    )
    config.write_text(text)
    result = csctl("boot", "--demand", "-", config=config, input=demand_json(1))
    assert result.exit_code == ExitCode.CREDENTIAL
    assert result.stderr.splitlines() == [
        f"error: {key}: signing key is accessible by group or others (mode 0644)",
        f"hint: chmod 600 {key}",
    ]


def owners_demand_json() -> str:
    """Two users who each want 20 one-core VMs."""
    req = {"vm_type": "one", "clouds": ["A"], "idle_jobs": 40, "vms_needed": 40}
    req["need_by_owner"] = {"alice": 20, "bob": 20}
    return json.dumps({"schema": "csctl.demand/1", "idle_jobs": 40, "requirements": [req], "rejected": []})


ONE_CORE = '[vm_types.one]\ncpus = 1\nmemory = 2000\ndisk = 10\nimages = { A = "img-a" }\n'


def test_dry_run_shows_what_each_owner_gets_and_why(csctl, config):
    text = config.read_text().replace("max_new_vms_per_cycle = 5", "max_new_vms_per_cycle = 50")
    config.write_text(text.replace("max_vms = 2", "max_vms = 10") + ONE_CORE)
    result = csctl("boot", "--dry-run", "--demand", "-", config=config, input=owners_demand_json())
    assert result.exit_code == 0, result.stderr
    assert "not booted: 30 one: A is at its limits" in result.stdout
    assert "fair share (equal)" in result.stdout
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    assert [row[:3] for row in rows if row[:1] in (["alice"], ["bob"])] == [
        ["alice", "20", "5"],
        ["bob", "20", "5"],
    ]
    assert "equal share among 2 owner(s); A is at its limits" in " ".join(result.stdout.split())
    result = csctl("--json", "boot", "--dry-run", "--demand", "-", config=config, input=owners_demand_json())
    plan = json.loads(result.stdout)
    assert [(i["cloud"], i["count"], i["owners"]) for i in plan["items"]] == [
        ("A", 10, {"alice": 5, "bob": 5})
    ]
    assert plan["fair_share"] == "equal" and plan["unplaced"][0]["owners"] == {"alice": 15, "bob": 15}


def test_dry_run_with_a_cloud_it_cannot_list_names_it_and_exits_partial(csctl, config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    down = '[clouds.down]\ndriver = "ec2"\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:9"\n'
    down += "max_attempts = 1\nconnect_timeout = 1\n"
    text = config.read_text().replace("[vm_types.big]", down + "[vm_types.big]")
    config.write_text(text.replace('B = "img-b" }', 'B = "img-b", down = "ami-1" }'))
    demand = json.loads(demand_json(1))
    demand["requirements"][0]["clouds"] = ["down"]
    result = csctl("boot", "--dry-run", "--demand", "-", config=config, input=json.dumps(demand))
    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("not booted")]
    assert line.startswith("not booted: 1 big: down could not be listed (cloud down: ")
    assert line.endswith("): its usage is unknown")
    assert "is at its limits" not in result.stdout
    assert "cloud down: " in result.stderr
