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
