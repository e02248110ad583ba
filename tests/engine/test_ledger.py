"""The ledger: a real SQLite file in a temporary state directory, updated from snapshots
and a pool that serves a job history."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from csctl.config import parse_config
from csctl.engine.accounting.ledger import LEDGER_FILE, open_ledger
from csctl.engine.accounting.record import update_ledger
from csctl.model import FinishedJob, Instance, JobHistory, Snapshot, StartdSlot, VMState

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def config(tmp_path: Path, extra: str = ""):
    return parse_config(
        textwrap.dedent(f"""
        state_dir = "{tmp_path}/state"
        [pool]
        name = "pool.test"
        collector = "127.0.0.1:1"
        [clouds.A]
        driver = "local"
        work_dir = "{tmp_path}/vms"
        [clouds.B]
        driver = "local"
        work_dir = "{tmp_path}/vms-b"
        [vm_types.big]
        cpus = 8
        memory = 16000
        disk = 100
        benchmark = 12.5
        images = {{ A = "img-a", B = "img-b" }}
        flavors = {{ A = "m1.xlarge" }}
        """)
        + extra
    )


class HistoryPool:
    """A pool whose schedd history holds ``jobs`` (newest last); it answers as the bindings
    do: the jobs after the mark, newest first, and where it stopped."""

    def __init__(self) -> None:
        self.jobs: list[FinishedJob] = []
        self.asked: list[dict[str, str]] = []
        self.fail = False

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        self.asked.append(dict(marks))
        if self.fail:
            return JobHistory(marks=dict(marks), errors=["schedd s: job history: timed out"])
        ids = [j.job for j in self.jobs]
        start = ids.index(marks["s"]) + 1 if "s" in marks else 0
        new = self.jobs[start:]
        return JobHistory(list(reversed(new)), {**marks, "s": new[-1].job} if new else dict(marks))


def instance(csctl_id: str, cloud: str = "A", **kw) -> Instance:
    return Instance(
        csctl_id, cloud, "big", VMState.RUNNING, f"i-{csctl_id}", booted_at=T0, image="img-a", **kw
    )


def finished(n: int, csctl_id: str = "a-1234abcd-0", owner: str = "alice") -> FinishedJob:
    return FinishedJob(f"s#{n}.0#1", "s", csctl_id, owner, "atlas", 1, 600, 550.5, int(T0.timestamp()) + 3600)


def test_a_cycle_records_the_vms_it_saw_and_the_jobs_that_finished(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    pool.jobs = [finished(1), finished(2)]
    slot = StartdSlot(
        "slot1@a", "a", "a-1234abcd-0", "big", "A", "Partitionable", "Unclaimed", "Idle", 8, 1, 1
    )
    snapshot = Snapshot(instances=[instance("a-1234abcd-0")], slots=[slot])
    assert update_ledger(cfg, pool, snapshot, T0 + timedelta(hours=2)) == []
    ledger, warnings = open_ledger(cfg.state_dir)
    with ledger:
        (vm,) = ledger.vms()
        jobs = ledger.jobs()
    assert warnings == []
    assert (vm.cloud, vm.instance_id, vm.vm_type, vm.image, vm.flavor) == (
        "A",
        "i-a-1234abcd-0",
        "big",
        "img-a",
        "m1.xlarge",
    )
    assert (vm.cores, vm.memory, vm.disk, vm.benchmark) == (8, 16000, 100, 12.5)
    assert (vm.booted, vm.joined, vm.terminated) == (int(T0.timestamp()), int(T0.timestamp()) + 7200, None)
    assert sorted((j.job, j.wall, j.cpu) for j in jobs["a-1234abcd-0"]) == [
        ("s#1.0#1", 600, 550.5),
        ("s#2.0#1", 600, 550.5),
    ]
    assert (cfg.state_dir / LEDGER_FILE).stat().st_mode & 0o777 == 0o600


def test_history_is_read_from_where_the_last_cycle_stopped(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    pool.jobs = [finished(1)]
    update_ledger(cfg, pool, Snapshot(), T0)
    pool.jobs.append(finished(2))
    update_ledger(cfg, pool, Snapshot(), T0)
    update_ledger(cfg, pool, Snapshot(), T0)
    assert pool.asked == [{}, {"s": "s#1.0#1"}, {"s": "s#2.0#1"}]
    pool.fail = True
    assert update_ledger(cfg, pool, Snapshot(), T0) == ["accounting: schedd s: job history: timed out"]
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        assert ledger.marks() == {"s": "s#2.0#1"} and len(ledger.jobs()["a-1234abcd-0"]) == 2


def test_a_vm_no_longer_listed_ended_at_its_last_sighting_unless_its_cloud_failed(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    both = Snapshot(instances=[instance("a-1111aaaa-0"), instance("b-2222bbbb-0", cloud="B")])
    update_ledger(cfg, pool, both, T0)
    update_ledger(cfg, pool, both, T0 + timedelta(minutes=5))
    update_ledger(cfg, pool, Snapshot(failed_clouds={"B"}), T0 + timedelta(minutes=10))
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        ended = {vm.csctl_id: vm.terminated for vm in ledger.vms()}
    assert ended == {"a-1111aaaa-0": int(T0.timestamp()) + 300, "b-2222bbbb-0": None}


def test_a_corrupt_ledger_is_set_aside_in_one_line_and_accounting_starts_anew(tmp_path):
    cfg = config(tmp_path)
    cfg.state_dir.mkdir()
    (cfg.state_dir / LEDGER_FILE).write_bytes(b"this is not a database" * 100)
    warnings = update_ledger(cfg, HistoryPool(), Snapshot(instances=[instance("a-1234abcd-0")]), T0)
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"{cfg.state_dir / LEDGER_FILE}: unreadable: file is not a database; moved to "
    )
    assert warnings[0].endswith("accounting starts anew")
    (aside,) = cfg.state_dir.glob(f"{LEDGER_FILE}.bad-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    ledger, again = open_ledger(cfg.state_dir)
    with ledger:
        assert again == [] and [vm.csctl_id for vm in ledger.vms()] == ["a-1234abcd-0"]


def test_a_ledger_of_another_schema_or_a_link_is_not_used(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    sqlite3.connect(state / LEDGER_FILE).executescript(
        "CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('schema', '99');"
    )
    _, warnings = open_ledger(state)
    assert "not a csctl ledger of schema 1" in warnings[0]
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (state / LEDGER_FILE).unlink()
    (state / LEDGER_FILE).symlink_to(target)
    ledger, warnings = open_ledger(state)
    ledger.close()
    assert "not a regular file" in warnings[0] and target.read_text() == "keep"
    assert not (state / LEDGER_FILE).is_symlink()


def test_the_ledger_can_be_turned_off(tmp_path):
    cfg = config(tmp_path, "[accounting]\nledger = false\n")
    assert update_ledger(cfg, HistoryPool(), Snapshot(instances=[instance("a-1234abcd-0")]), T0) == []
    assert not (cfg.state_dir / LEDGER_FILE).exists()


WRITER = """
import sys
from pathlib import Path
from csctl.engine.accounting.ledger import open_ledger
from csctl.model import FinishedJob
ledger, _ = open_ledger(Path(sys.argv[1]))
n = 0
while True:
    with ledger.transaction():
        ledger.add_jobs(FinishedJob(f"s#{n + i}", "s", "a-1-0", "u", None, 1, 1, 1.0, 1) for i in range(2000))
    n += 2000
    print(n, flush=True)
"""


def test_kill_9_during_a_write_loses_nothing_committed(tmp_path):
    state = tmp_path / "state"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    committed = 0
    while committed < 20_000:
        committed = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)  # most of its time is spent inside a transaction
    writer.wait()
    db = sqlite3.connect(state / LEDGER_FILE)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (count,) = db.execute("SELECT count(*) FROM jobs").fetchone()
    assert count >= committed and count % 2000 == 0  # whole transactions, never half of one
    db.close()
    ledger, warnings = open_ledger(state)
    ledger.close()
    assert warnings == []


def test_a_history_ad_is_read_defensively():
    import classad2

    from csctl.pool.history import finished_job

    ad = classad2.ClassAd(
        {
            "GlobalJobId": "s#7.0#1",
            "MachineAttrCsctlId0": "a-1234abcd-0",
            "Owner": "x" * 1000,
            "AcctGroup": "atlas",
            "RequestCpus": 4,
            "RemoteWallClockTime": 120.0,
            "RemoteUserCpu": 100.0,
            "RemoteSysCpu": 5.5,
            "CompletionDate": 1_800_000_000,
        }
    )
    job = finished_job("s", ad)
    assert job is not None
    assert (job.cores, job.wall, job.cpu, job.ended, job.group) == (4, 120, 105.5, 1_800_000_000, "atlas")
    ad["RemoteWallClockTime"], ad["RemoteUserCpu"], ad["AcctGroup"] = -5, "lots", 3
    ad["CompletionDate"], ad["EnteredCurrentStatus"] = 0, 1_800_000_100  # removed jobs have no completion
    odd = finished_job("s", ad)
    assert odd is not None and (odd.wall, odd.cpu, odd.ended, odd.group) == (0, 5.5, 1_800_000_100, None)
    del ad["GlobalJobId"]
    assert finished_job("s", ad) is None


def test_owner_and_group_are_stored_cut_to_what_apel_holds(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    ended = int(T0.timestamp())  # within accounting.keep_days: an older job would be forgotten
    long = FinishedJob("s#1.0#1", "s", "a-1234abcd-0", "o" * 1000, "g\n" * 300, 1, 1, 1.0, ended)
    pool.jobs = [long]
    update_ledger(cfg, pool, Snapshot(), T0)
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        (job,) = ledger.jobs()["a-1234abcd-0"]
    assert (len(job.owner), len(job.group or "")) == (255, 255)


def test_a_pool_that_cannot_be_asked_for_history_costs_the_jobs_only(tmp_path):
    from csctl.errors import PoolUnreachable

    class Unreachable(HistoryPool):
        def job_history(self, marks: Mapping[str, str]) -> JobHistory:
            raise PoolUnreachable("cannot query collector 127.0.0.1:1: timed out")

    cfg = config(tmp_path)
    warnings = update_ledger(cfg, Unreachable(), Snapshot(instances=[instance("a-1234abcd-0")]), T0)
    assert warnings == ["accounting: job history not read: cannot query collector 127.0.0.1:1: timed out"]
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        assert [vm.csctl_id for vm in ledger.vms()] == ["a-1234abcd-0"] and ledger.jobs() == {}


def test_a_ledger_lost_from_a_used_state_directory_is_one_line(tmp_path):
    cfg = config(tmp_path)
    cfg.state_dir.mkdir()
    (cfg.state_dir / "backoff.json").write_text('{"failures": {}, "until": {}}')
    seen = Snapshot(instances=[instance("a-1234abcd-0")])
    assert update_ledger(cfg, HistoryPool(), seen, T0) == [
        f"{cfg.state_dir / LEDGER_FILE}: not found; a new ledger starts (usage before now is not in it)"
    ]
    assert update_ledger(cfg, HistoryPool(), seen, T0) == []


def test_a_history_ad_with_impossible_times_is_not_believed():
    import classad2

    from csctl.pool.history import finished_job

    base = {"GlobalJobId": "s#8.0#1", "MachineAttrCsctlId0": "a-1234abcd-0", "RemoteWallClockTime": 1e14}
    assert finished_job("s", classad2.ClassAd({**base, "CompletionDate": 10**14})) is None
    assert finished_job("s", classad2.ClassAd({**base, "CompletionDate": 12})) is None
    job = finished_job("s", classad2.ClassAd({**base, "CompletionDate": 1_800_000_000}))
    assert job is not None and job.ended - job.wall == 946_684_800  # no run before 2000


def test_a_boot_time_tag_from_long_ago_is_kept_sane(tmp_path):
    cfg = config(tmp_path)
    old = Instance(
        "a-1234abcd-0", "A", "big", VMState.RUNNING, "i-1", booted_at=datetime(1, 1, 1, tzinfo=UTC)
    )
    update_ledger(cfg, HistoryPool(), Snapshot(instances=[old]), T0)
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        (vm,) = ledger.vms()
    assert vm.booted == 946_684_800


def test_status_sums_the_last_24_hours_and_starts_no_ledger(tmp_path):
    from csctl.engine.accounting.report import recent_usage

    cfg, pool = config(tmp_path), HistoryPool()
    assert recent_usage(cfg.state_dir, T0) == (None, [])
    assert not (cfg.state_dir / LEDGER_FILE).exists()  # status only looks
    pool.jobs = [finished(1), finished(2)]  # 600 s of one core each, an hour after the boot
    snapshot = Snapshot(instances=[instance("a-1234abcd-0")])
    update_ledger(cfg, pool, snapshot, T0 + timedelta(hours=2))
    before = [p.name for p in cfg.state_dir.iterdir()]
    ledger, warnings = recent_usage(cfg.state_dir, T0 + timedelta(hours=2))
    assert warnings == [] and ledger is not None
    # nothing written but SQLite's own shared-memory index of a WAL ledger, as private as it
    after = {p.name: p.stat().st_mode & 0o777 for p in cfg.state_dir.iterdir() if p.name not in before}
    assert set(after) <= {"ledger.sqlite-wal", "ledger.sqlite-shm"} and set(after.values()) <= {0o600}
    assert (ledger["provisioned_core_hours"], ledger["vm_hours"], ledger["jobs"]) == (16.0, 2.0, 2)
    assert ledger["busy_core_hours"] == round(1200 / 3600, 2)
    assert ledger["utilisation"] == round((1200 / 3600) / 16, 4) and ledger["never_ran_a_job"] == 0
    bad = b"not a database at all" * 100
    (cfg.state_dir / LEDGER_FILE).write_bytes(bad)
    assert recent_usage(cfg.state_dir, T0) == (
        None,
        [f"{cfg.state_dir / LEDGER_FILE}: cannot read the ledger (file is not a database)"],
    )
    assert (cfg.state_dir / LEDGER_FILE).read_bytes() == bad  # left for the next run to set aside


def test_a_history_scan_stops_at_the_mark_job_and_a_bad_mark_reads_everything():
    from csctl.pool.history import since

    stop = since("1234.5")
    assert str(stop) == "ClusterId == 1234 && ProcId == 5"
    for mark in (None, "", "12", "1.2.3", "١٢.٣", "1.2) || true", "9" * 16 + ".0"):
        assert since(mark) is None, mark


def test_vms_gone_longer_than_keep_days_leave_the_ledger_once_a_day(tmp_path):
    cfg, pool = config(tmp_path, "[accounting]\nkeep_days = 30\n"), HistoryPool()
    pool.jobs = [finished(1, "a-1111aaaa-0"), finished(2, "b-2222bbbb-0"), finished(3, "z-0000zzzz-0")]
    update_ledger(cfg, pool, Snapshot(instances=[instance("a-1111aaaa-0"), instance("b-2222bbbb-0")]), T0)
    still_b = Snapshot(instances=[instance("b-2222bbbb-0")])

    def held(now: datetime) -> tuple[list[str], list[str]]:
        update_ledger(cfg, pool, still_b, now)
        ledger, _ = open_ledger(cfg.state_dir)
        with ledger:
            return sorted(vm.csctl_id for vm in ledger.vms()), sorted(ledger.jobs())

    everything = (["a-1111aaaa-0", "b-2222bbbb-0"], ["a-1111aaaa-0", "b-2222bbbb-0", "z-0000zzzz-0"])
    assert held(T0 + timedelta(minutes=5)) == everything  # a ended at T0, its last sighting
    assert held(T0 + timedelta(days=30) - timedelta(hours=1)) == everything  # not 30 days yet
    assert held(T0 + timedelta(days=30, hours=2)) == everything  # 30 days, but swept 3 hours ago
    # a day after that sweep: a, its job and the job of a VM never held are forgotten
    assert held(T0 + timedelta(days=31)) == (["b-2222bbbb-0"], ["b-2222bbbb-0"])


def test_keep_days_0_keeps_everything(tmp_path):
    cfg, pool = config(tmp_path, "[accounting]\nkeep_days = 0\n"), HistoryPool()
    pool.jobs = [finished(1, "a-1111aaaa-0")]
    update_ledger(cfg, pool, Snapshot(instances=[instance("a-1111aaaa-0")]), T0)
    update_ledger(cfg, pool, Snapshot(), T0 + timedelta(days=3650))
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        assert [vm.terminated for vm in ledger.vms()] == [int(T0.timestamp())]
        assert list(ledger.jobs()) == ["a-1111aaaa-0"]
