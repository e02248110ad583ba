"""``csctl simulate`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.simulate.helpers import bursty_trace, config_text


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "csctl.toml"
    cfg.write_text(config_text(a="max_vms = 3"))
    return cfg, bursty_trace(tmp_path / "bursty.swf", jobs=200, days=1.0)


def test_table_of_the_replay(csctl, files):
    cfg, trace = files
    run = csctl("simulate", "--trace", str(trace), "--seed", "1", config=cfg)
    assert run.exit_code == 0, run.stderr
    rows = {line.split("│")[0].strip(): line for line in run.stdout.splitlines() if "│" in line}
    for figure in ("jobs", "served", "wait p95", "utilisation", "VM-hours", "unused boots", "peak VMs A"):
        assert figure in rows, run.stdout
    assert rows["jobs"].split("│")[1].strip() == "200"


def test_json_is_the_documented_schema_and_byte_identical(csctl, files):
    cfg, trace = files
    args = ["simulate", "--trace", str(trace), "--seed", "5", "--boot-time", "200,30", "--json"]
    first, again = csctl(*args, config=cfg), csctl(*args, config=cfg)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == again.stdout
    data = json.loads(first.stdout)
    assert data["schema"] == "csctl.simulate/1"
    assert data["boot_time"] == {"mean": 200.0, "sd": 30.0}
    [variant] = data["variants"]
    assert variant["peak_vms"]["A"] <= 3
    assert set(variant["wait_seconds"]) == {"p50", "p95", "p99", "max"}


def test_set_variants_are_columns(csctl, files):
    cfg, trace = files
    run = csctl(
        "simulate", "--trace", str(trace), "--set", "policy.max_new_vms_per_cycle=1,20", "--json", config=cfg
    )
    assert run.exit_code == 0, run.stderr
    labels = [v["label"] for v in json.loads(run.stdout)["variants"]]
    assert labels == ["policy.max_new_vms_per_cycle=1", "policy.max_new_vms_per_cycle=20"]


def test_a_bad_set_value_is_a_configuration_error(csctl, files):
    cfg, trace = files
    run = csctl("simulate", "--trace", str(trace), "--set", "policy.max_new_vms_per_cycle=ten", config=cfg)
    assert run.exit_code == 3
    assert run.stderr.strip() == (
        'error: --set: policy.max_new_vms_per_cycle: expected an integer >= 0, got "ten"'
    )


def test_a_bad_boot_time_is_a_usage_error(csctl, files):
    cfg, trace = files
    run = csctl("simulate", "--trace", str(trace), "--boot-time", "soon", config=cfg)
    assert run.exit_code == 2
    assert "expected MEAN[,SD] in seconds, got 'soon'" in run.stderr


def test_a_malformed_trace_names_its_line(csctl, files, tmp_path: Path):
    cfg, _ = files
    bad = tmp_path / "bad.swf"
    bad.write_text("; header\n1 2 3\n")
    run = csctl("simulate", "--trace", str(bad), config=cfg)
    assert run.exit_code == 2
    assert run.stderr.strip() == f"error: {bad}:2: expected 18 fields, got 3"


def test_plot_draws_the_png_beside_the_table(csctl, files, tmp_path: Path):
    cfg, trace = files
    out = tmp_path / "replay.png"
    run = csctl("simulate", "--trace", str(trace), "--plot", str(out), config=cfg)
    assert run.exit_code == 0, run.stderr
    assert "utilisation" in run.stdout
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_that_cannot_be_written_is_one_line(csctl, files, tmp_path: Path):
    cfg, trace = files
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = csctl("simulate", "--trace", str(trace), "--plot", str(blocker / "x.png"), config=cfg)
    assert run.exit_code == 2, run.stdout
    assert run.stderr.splitlines()[0] == (
        f"error: --plot: cannot write {blocker / 'x.png'}: {blocker} is not a directory"
    )
