"""The cycle's Prometheus textfile, read back by a parser of the text exposition format."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from csctl.engine.cycle import CycleReport
from csctl.engine.metrics import write_metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL},?)*)\}})? (\S+)(?: -?\d+)?$")
COMMENT = re.compile(rf"^# (HELP|TYPE) ({NAME}) (.+)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str], dict[str, str]]:
    """Samples, HELP and TYPE per metric, enforcing the text format's rules: one line per
    item, a TYPE before the metric's first sample and only once, a metric's samples
    together, values that are floats, a final newline."""
    assert text.endswith("\n"), "the file must end with a newline"
    samples: Samples = {}
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    finished: set[str] = set()
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if comment := COMMENT.match(line):
            kind, name, rest = comment.groups()
            table = helps if kind == "HELP" else types
            assert name not in table, f"{where}: second {kind} for {name}"
            assert kind == "HELP" or rest in TYPES, f"{where}: unknown type"
            assert kind == "HELP" or not any(key[0] == name for key in samples), (
                f"{where}: TYPE after samples"
            )
            table[name] = rest
            continue
        sample = SAMPLE.match(line)
        assert sample, f"{where}: not a sample line"
        name, labels, value = sample.group(1), sample.group(2) or "", sample.group(5)
        if name != current:
            assert name not in finished, f"{where}: samples of {name} are not together"
            if current:
                finished.add(current)
            current = name
        key = (name, frozenset(re.findall(LABEL, labels)))
        assert key not in samples, f"{where}: duplicate sample"
        samples[key] = float(value)  # also accepts NaN, +Inf, -Inf, as Prometheus does
    return samples, helps, types


def written(tmp_path: Path, report: CycleReport) -> tuple[Path, Samples, dict[str, str], dict[str, str]]:
    path = tmp_path / "textfile" / "csctl.prom"
    write_metrics(path, report, NOW)
    return (path, *parse(path.read_text()))


def test_the_textfile_holds_every_number_of_the_cycle(tmp_path):
    report = CycleReport(
        idle_jobs=12,
        unservable_jobs=3,
        vms={"Hermes": {"idle": 2, "busy": 1}, "FGHotel": {"booting": 4}},
        booted=4,
        drained=2,
        terminated=1,
        boot_failures=1,
        errors=["cloud Nova: timed out", "schedd s1: refused"],
        seconds=1.23456,
    )
    path, samples, helps, types = written(tmp_path, report)
    assert samples == {
        ("csctl_idle_jobs", frozenset()): 12,
        ("csctl_unservable_jobs", frozenset()): 3,
        ("csctl_vms", frozenset({("cloud", "FGHotel"), ("status", "booting")})): 4,
        ("csctl_vms", frozenset({("cloud", "Hermes"), ("status", "busy")})): 1,
        ("csctl_vms", frozenset({("cloud", "Hermes"), ("status", "idle")})): 2,
        ("csctl_booted", frozenset()): 4,
        ("csctl_drained", frozenset()): 2,
        ("csctl_terminated", frozenset()): 1,
        ("csctl_boot_failures", frozenset()): 1,
        ("csctl_errors", frozenset()): 2,
        ("csctl_cycle_seconds", frozenset()): 1.235,
        ("csctl_last_cycle_timestamp_seconds", frozenset()): NOW.timestamp(),
    }
    names = {name for name, _ in samples}
    assert set(types) == names and set(types.values()) == {"gauge"}
    assert set(helps) == names and all(text.strip() for text in helps.values())
    # node_exporter's textfile collector runs as another user
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_cycle_without_vms_still_declares_the_vm_metric(tmp_path):
    _, samples, helps, types = written(tmp_path, CycleReport())
    assert types["csctl_vms"] == "gauge" and "csctl_vms" in helps
    assert not any(name == "csctl_vms" for name, _ in samples)
    assert all(not math.isnan(v) for v in samples.values())
    assert samples[("csctl_idle_jobs", frozenset())] == 0


def test_the_next_cycle_replaces_the_file_whole(tmp_path):
    written(tmp_path, CycleReport(vms={"Gone": {"idle": 3}}))
    _, samples, _, _ = written(tmp_path, CycleReport(vms={"Hermes": {"idle": 1}}))
    clouds = {dict(labels)["cloud"] for name, labels in samples if name == "csctl_vms"}
    assert clouds == {"Hermes"}
    assert [p.name for p in (tmp_path / "textfile").iterdir()] == ["csctl.prom"]


@pytest.mark.parametrize(
    "text",
    [
        "csctl_x{cloud=A} 1\n",  # an unquoted label value
        "csctl x 1\n",  # a space in the name
        "csctl_x one\n",  # not a number
        "csctl_x 1",  # no final newline
        "# TYPE csctl_x gauge\n# TYPE csctl_x gauge\ncsctl_x 1\n",
        "csctl_x 1\n# TYPE csctl_x gauge\n",
        'csctl_x 1\ncsctl_y 1\ncsctl_x{a="b"} 2\n',
    ],
)
def test_the_parser_refuses_what_prometheus_refuses(text):
    with pytest.raises((AssertionError, ValueError)):
        parse(text)
