"""`csctl accounting apel` and `csctl accounting report` on a ledger a cycle filled.

The APEL messages are read back with the ``dirq`` package (the queue ssmsend reads) and
each record is rebuilt with cASO's own CloudRecord model (an independent reading of
APEL's cloud record v0.4), which must render the same fields."""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dirq.QueueSimple import QueueSimple

from csctl.config import load_config
from csctl.engine.accounting.record import update_ledger
from csctl.model import FinishedJob, Instance, JobHistory, Snapshot, VMState
from tests.cli.configs import write_config

ACCOUNTING = '\n[accounting]\nsite_name = "CA-TEST-T2"\nbenchmark_type = "HEPSPEC"\nfqan = "/atlas"\n'
BOOTED = datetime(2026, 1, 31, 18, tzinfo=UTC)
HOSTILE = "mallory\n%%\nSiteName: EVIL [bold]x[/bold]\x1b[31m"


class History:
    def __init__(self, jobs: list[FinishedJob]) -> None:
        self.jobs = jobs

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        jobs, self.jobs = self.jobs, []
        return JobHistory(jobs, {"s": jobs[0].job} if jobs else dict(marks))


def epoch(when: datetime) -> int:
    return calendar.timegm(when.utctimetuple())


@pytest.fixture
def ledger_config(tmp_path: Path) -> Path:
    """A configuration with accounting, and a ledger holding two VMs that are gone: one
    ran three jobs across the new month, one never ran a job."""
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("images =", "benchmark = 10.5\nimages =") + ACCOUNTING)
    cfg = load_config(path)
    vms = [
        Instance(f"a-1234abcd-{i}", "A", "big", VMState.RUNNING, f"i-{i}", booted_at=BOOTED, image="img-a")
        for i in (0, 1)
    ]
    end = epoch(datetime(2026, 2, 1, 2, tzinfo=UTC))
    jobs = [
        FinishedJob("s#1.0#9", "s", "a-1234abcd-0", "alice", "atlas", 4, 3 * 3600, 3 * 3600 * 3.0, end),
        FinishedJob("s#2.0#9", "s", "a-1234abcd-0", "alice", "atlas", 2, 3600, 3000.0, end - 7200),
        FinishedJob("s#3.0#9", "s", "a-1234abcd-0", HOSTILE, None, 2, 3600, 1800.0, end - 7200),
    ]
    update_ledger(cfg, History(jobs), Snapshot(instances=vms), datetime(2026, 2, 1, 4, tzinfo=UTC))
    update_ledger(cfg, History([]), Snapshot(), datetime(2026, 2, 1, 5, tzinfo=UTC))
    return path


def read_queue(outgoing: Path) -> list[str]:
    queue = QueueSimple(str(outgoing))
    texts = []
    name = queue.first()
    while name:
        assert queue.lock(name)
        texts.append(queue.get(name).decode())
        name = queue.next()
    assert queue.count() == len(texts)
    return texts


def parse(message: str) -> list[dict[str, str]]:
    """APEL's message format read independently: a header, then ``Key: Value`` records
    separated by lines ``%%``."""
    header, _, body = message.partition("\n")
    assert header == "APEL-cloud-message: v0.4" and message.endswith("\n")
    return [
        dict(line.split(": ", 1) for line in record.splitlines())
        for record in body.rstrip("\n").split("\n%%\n")
    ]


def caso_fields(fields: dict[str, str]) -> dict[str, str]:
    """The record as cASO renders its own CloudRecord built from our values."""
    from caso.record import CloudRecord

    when = {
        k: datetime.fromtimestamp(int(fields[k]), UTC) if k in fields else None
        for k in ("StartTime", "EndTime")
    }
    given = {
        k: v
        for k, v in fields.items()
        if k not in ("RecordCreateTime", "StartTime", "EndTime", "WallDuration", "CpuDuration")
    }
    record = CloudRecord(start_time=when["StartTime"], end_time=when["EndTime"], **given)
    record.wall_duration = int(fields["WallDuration"])
    record.cpu_duration = int(fields["CpuDuration"])
    return dict(line.split(": ", 1) for line in record.ssm_message().splitlines())


def test_apel_writes_a_dirq_queue_that_dirq_and_caso_read_back(csctl, ledger_config, tmp_path):
    outgoing = tmp_path / "outgoing"
    result = csctl("accounting", "apel", "--outgoing", str(outgoing), config=ledger_config)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"4 record(s) in 1 message(s) written to {outgoing}\n"
    (message,) = read_queue(outgoing)
    records = parse(message)
    assert [(r["MachineName"], r["Status"]) for r in records] == [
        ("a-1234abcd-0", "started"), ("a-1234abcd-0", "completed"),
        ("a-1234abcd-1", "started"), ("a-1234abcd-1", "completed"),
    ]  # fmt: skip
    january, february = records[0], records[1]
    # booted 18:00 on January 31, last seen 04:00 on February 1
    assert (january["WallDuration"], february["WallDuration"]) == (str(6 * 3600), str(4 * 3600))
    # January holds the two short jobs and the first of the long job's three hours
    assert (january["CpuDuration"], february["CpuDuration"]) == (str(10800 + 3000 + 1800), str(21600))
    assert all(r["SiteName"] == "CA-TEST-T2" for r in records)
    for fields in records:
        rendered = caso_fields(fields)
        # cASO reports at least 1 s of CPU and wall time (its own choice, not APEL's format)
        rendered.update({k: fields[k] for k in ("CpuDuration", "WallDuration") if fields[k] == "0"})
        assert {k: rendered[k] for k in fields if k != "RecordCreateTime"} == {
            k: v for k, v in fields.items() if k != "RecordCreateTime"
        }
        assert set(rendered) - set(fields) <= {"PublicIPCount"}
    assert outgoing.stat().st_mode & 0o777 == 0o700
    for path in outgoing.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600)


def test_a_second_export_writes_only_what_changed_and_since_writes_a_period_again(
    csctl, ledger_config, tmp_path
):
    outgoing = tmp_path / "outgoing"
    csctl("accounting", "apel", "--outgoing", str(outgoing), config=ledger_config)
    again = csctl("accounting", "apel", "--outgoing", str(outgoing), config=ledger_config)
    assert again.stderr == f"0 record(s) in 0 message(s) written to {outgoing}\n"
    period = csctl(
        "accounting", "apel", "--outgoing", str(outgoing), "--since", "2026-02-01", config=ledger_config
    )
    assert period.stderr == f"2 record(s) in 1 message(s) written to {outgoing}\n"
    assert len(read_queue(outgoing)) == 2


def test_dry_run_prints_the_messages_and_writes_nothing(csctl, ledger_config, tmp_path):
    result = csctl("accounting", "apel", "--dry-run", config=ledger_config)
    assert result.exit_code == 0
    assert [r["MachineName"] for r in parse(result.stdout)] == ["a-1234abcd-0"] * 2 + ["a-1234abcd-1"] * 2
    assert result.stderr == "dry run: 4 record(s) in 1 message(s); nothing was written\n"
    written = csctl("accounting", "apel", "--outgoing", str(tmp_path / "out"), config=ledger_config)
    assert written.stderr.startswith("4 record(s)")  # the dry run marked nothing as written


def test_apel_needs_a_site_name(csctl, tmp_path):
    config = write_config(tmp_path)
    result = csctl("accounting", "apel", "--outgoing", str(tmp_path / "out"), config=config)
    assert (result.exit_code, result.stderr) == (
        3,
        f"error: {config}: accounting.site_name: required to write APEL records\n",
    )
    assert not (tmp_path / "out").exists()
    usage = csctl("accounting", "apel", config=config)
    assert usage.exit_code == 2 and "--outgoing is required (or --dry-run)" in usage.stderr


def test_report_by_owner_in_json_csv_and_a_table(csctl, ledger_config):
    period = ("--since", "2026-01-01", "--until", "2026-03-01", "--by", "owner")
    data = json.loads(csctl("--json", "accounting", "report", *period, config=ledger_config).stdout)
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == {"alice", HOSTILE, "(no jobs)", "total"}
    assert rows["total"]["provisioned_core_hours"] == pytest.approx(2 * 8 * 10)
    assert rows["total"]["busy_core_hours"] == pytest.approx(12 + 2 + 2)
    assert rows["alice"]["jobs"] == 2 and rows["(no jobs)"]["never_ran_a_job"] == 1
    assert rows["alice"]["cpu_efficiency"] == pytest.approx((9 * 3600 + 3000) / (14 * 3600))
    assert rows["total"]["utilisation"] == pytest.approx(16 / 160)
    assert rows["(no jobs)"]["provisioned_core_hours"] == pytest.approx(80)  # the VM that ran nothing

    table = csctl("accounting", "report", *period, config=ledger_config).stdout
    # one escaped line (wrapped by the table at 80 columns), markup shown as text, no escape
    assert "mallory\\…" in table and "[bold]x[…" in table and "\x1b" not in table
    lines = list(
        csv.reader(io.StringIO(csctl("accounting", "report", *period, "--csv", config=ledger_config).stdout))
    )
    assert lines[0][:3] == ["owner", "provisioned core-h", "busy core-h"] and len(lines) == 5
    assert all("\n" not in cell for line in lines for cell in line)


def test_a_state_directory_that_is_a_file_is_one_line(csctl, tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "state").write_text("not a directory")
    result = csctl("accounting", "report", config=config)
    assert result.exit_code != 0 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        f"error: {tmp_path / 'state' / 'ledger.sqlite'}: cannot open the ledger ("
    )
