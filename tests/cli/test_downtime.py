"""``csctl downtime`` where no pool is needed: declaring, listing, removing, importing from
GOCDB, and one-line errors. The collector (127.0.0.1:1) does not answer, so publishing
the ads is a warning and the declarations still stand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csctl.errors import ExitCode
from tests.cli.configs import write_config

DATA = Path(__file__).resolve().parent.parent / "data"
SOON = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00Z")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    path.write_text(
        path.read_text().replace("max_vms = 2\n", 'max_vms = 2\nhostnames = ["cloud-a.example.org"]\n')
    )
    return path


def test_add_list_remove(csctl, config, tmp_path):
    added = csctl(
        "downtime",
        "add",
        "--cloud",
        "A",
        "--start",
        SOON,
        "--duration",
        "4h",
        "--reason",
        "kernel",
        config=config,
    )
    assert added.exit_code == 0, added.stderr
    assert added.stdout.startswith("declared downtime 1 (cloud A, outage ")
    assert added.stdout.rstrip().endswith(": kernel)")
    assert added.stderr.startswith(
        "warning: downtime ads not published: collector 127.0.0.1:1 refused the ads"
    )
    schedule = csctl(
        "downtime", "add", "--type", "big", "--schedule", "0 22 * * 6", "--duration", "8h", config=config
    )
    assert schedule.exit_code == 0, schedule.stderr

    listed = json.loads(csctl("--json", "downtime", "list", config=config).stdout)
    rows = [(d["id"], d["scope"], d["phase"]) for d in listed["downtimes"]]
    assert rows == [("1", "cloud A", "upcoming"), ("2", "type big", "upcoming")]
    assert (
        listed["downtimes"][1]["schedule"] == "0 22 * * 6"
        and listed["downtimes"][1]["duration_minutes"] == 480
    )
    table = csctl("downtime", "list", config=config).stdout
    assert "cloud A" in table and "(0 22 * * 6)" in table

    assert csctl("downtime", "remove", "1", config=config).stdout.startswith("removed downtime 1 (cloud A")
    gone = csctl("downtime", "remove", "1", config=config)
    assert (gone.exit_code, gone.stderr) == (ExitCode.USAGE, "error: no downtime '1' (known: 2)\n")
    saved = json.loads((tmp_path / "state" / "downtimes.json").read_text())
    assert [d["id"] for d in saved["downtimes"]] == ["2"] and saved["next_id"] == 3
    assert (tmp_path / "state" / "downtimes.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cloud", "A", "--start", "next week", "--duration", "1h"],
            "--start 'next week': not an ISO 8601 time",
        ),
        (
            ["--cloud", "A", "--start", "2030-01-02T10:00", "--end", "2030-01-02T09:00"],
            "--end 2030-01-02T09:00:00Z is not after",
        ),
        (["--cloud", "Nowhere", "--duration", "1h"], "unknown cloud 'Nowhere' (known: A)"),
        (
            ["--cloud", "A", "--image", "img-z", "--duration", "1h"],
            "unknown image 'img-z' on cloud A (known: img-a)",
        ),
        (["--type", "small", "--duration", "1h"], "unknown VM type 'small' (known: big)"),
    ],
)
def test_errors_are_one_line_exit_2_and_nothing_is_saved(csctl, config, tmp_path, args, message):
    result = csctl("downtime", "add", *args, config=config)
    assert result.exit_code == ExitCode.USAGE
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "state" / "downtimes.json").exists()


def test_a_contradicting_overlap_is_refused(csctl, config):
    assert (
        csctl("downtime", "add", "--cloud", "A", "--start", SOON, "--duration", "4h", config=config).exit_code
        == 0
    )
    later = csctl(
        "downtime",
        "add",
        "--cloud",
        "A",
        "--start",
        SOON,
        "--duration",
        "1h",
        "--severity",
        "warning",
        config=config,
    )
    assert later.exit_code == ExitCode.USAGE
    assert (
        "overlaps downtime 1 (cloud A, outage" in later.stderr and "csctl downtime remove 1" in later.stderr
    )


def test_an_unreadable_downtimes_file_is_never_overwritten(csctl, config, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "downtimes.json").write_text("{not json")
    result = csctl("downtime", "add", "--cloud", "A", "--duration", "1h", config=config)
    assert result.exit_code == ExitCode.ERROR
    assert "downtimes.json: cannot be read" in result.stderr and "nothing was changed" in result.stderr
    assert (tmp_path / "state" / "downtimes.json").read_text() == "{not json"
    listed = csctl("downtime", "list", config=config)
    assert listed.exit_code == 0 and "ignored, cannot be read" in listed.stderr


def test_gocdb_import_maps_hostnames_to_clouds_and_reimports_in_place(csctl, config):
    result = csctl(
        "--json", "downtime", "import", "--gocdb", str(DATA / "gocdb_get_downtime.xml"), config=config
    )
    assert result.exit_code == 0, result.stderr
    added = json.loads(result.stdout)["added"]
    assert [(d["id"], d["severity"], d["cloud"], d["start"], d["end"]) for d in added] == [
        ("gocdb-31201-A", "outage", "A", "2026-12-01T08:00:00+00:00", "2026-12-01T16:00:00+00:00"),
        ("gocdb-31202-A", "warning", "A", "2026-12-03T06:00:00+00:00", "2026-12-03T07:00:00+00:00"),
    ]
    assert added[0]["reason"] == "OpenStack upgrade to the next release"
    assert "GOCDB downtime 31203: host se.example.org is no cloud's" in result.stderr
    again = csctl("downtime", "import", "--gocdb", str(DATA / "gocdb_get_downtime.xml"), config=config)
    assert again.exit_code == 0
    listed = json.loads(csctl("--json", "downtime", "list", config=config).stdout)["downtimes"]
    assert [d["id"] for d in listed] == ["gocdb-31201-A", "gocdb-31202-A"]


def test_gocdb_import_refuses_entities(csctl, config, tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]><results>&a;</results>')
    result = csctl("downtime", "import", "--gocdb", str(bomb), config=config)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr == f"error: {bomb}: document type declarations are refused (entity expansion)\n"


def test_boot_dry_run_goes_to_the_other_cloud_and_names_the_downtime(csctl, tmp_path):
    from tests.cli.test_boot import CONFIG, demand_json

    config = tmp_path / "two.toml"
    config.write_text(CONFIG.format(state=tmp_path / "state", work=tmp_path / "vms"))
    added = csctl(
        "downtime", "add", "--cloud", "A", "--duration", "2h", "--reason", "disk swap", config=config
    )
    assert added.exit_code == 0, added.stderr
    result = csctl("--json", "boot", "--dry-run", "--demand", "-", config=config, input=demand_json(3))
    assert result.exit_code == 0, result.stderr
    assert [(i["cloud"], i["count"]) for i in json.loads(result.stdout)["items"]] == [("B", 3)]
    assert "warning: big on A kept out by downtime 1 (cloud A, outage " in result.stderr
    assert ": disk swap)" in result.stderr
