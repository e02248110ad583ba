"""The ledger: what each csctl VM did, kept in STATE_DIR/ledger.sqlite (mode 0600).

VMs leave their clouds once terminated, so this is the one piece of state csctl keeps
that nothing else holds: per VM its shape and its life (booted, joined, drain started,
terminated), per VM the jobs it ran, where each schedd's history was last read, and
which APEL records were written out. Every change is one SQLite transaction, so a
process killed mid-write loses that write and nothing committed before it.

Losing the file loses accounting, never a job or a VM: a ledger that is not a csctl
ledger (corrupt, of an unknown schema, not a regular file) is moved aside, named in one
line, and a new one is started.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path

from csctl.engine.state import BACKOFF_FILE, StateError
from csctl.model import FinishedJob
from csctl.plan.accounting.usage import (
    MAX_TEXT,
    JobTotals,
    JobUsage,
    VMUsage,
    cpu_by_month,
    job_totals,
    month_bounds,
    month_of,
)

LEDGER_FILE = "ledger.sqlite"
SCHEMA = 1
# SQLITE_CORRUPT, SQLITE_NOTADB: the file is not a usable database (other errors, such as
# a lock held too long, leave it alone)
BROKEN = {11, 26}
_VM_COLUMNS = (
    "csctl_id, cloud, instance_id, vm_type, image, flavor, cores, memory, disk, benchmark, "
    "booted, joined, drain_started, terminated, last_seen"
)
_JOB_COLUMNS = "job, csctl_id, owner, acct_group, cores, wall, cpu, ended"
_J = ", ".join(f"j.{c}" for c in _JOB_COLUMNS.split(", "))
_TABLES = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vms (
  csctl_id TEXT PRIMARY KEY, cloud TEXT NOT NULL, instance_id TEXT NOT NULL, vm_type TEXT NOT NULL,
  image TEXT, flavor TEXT, cores INTEGER NOT NULL, memory INTEGER NOT NULL, disk INTEGER NOT NULL,
  benchmark REAL, booted INTEGER NOT NULL, joined INTEGER, drain_started INTEGER, terminated INTEGER,
  last_seen INTEGER NOT NULL);
CREATE INDEX vms_running ON vms (terminated);
CREATE TABLE jobs (
  csctl_id TEXT NOT NULL, job TEXT NOT NULL, owner TEXT NOT NULL, acct_group TEXT,
  cores INTEGER NOT NULL, wall INTEGER NOT NULL, cpu REAL NOT NULL, ended INTEGER NOT NULL,
  PRIMARY KEY (csctl_id, job)) WITHOUT ROWID;
CREATE TABLE marks (schedd TEXT PRIMARY KEY, since TEXT NOT NULL);
CREATE TABLE published (csctl_id TEXT, month TEXT, digest TEXT NOT NULL,
  PRIMARY KEY (csctl_id, month)) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema', '{SCHEMA}');
"""


class NotALedger(Exception):
    """The file cannot serve as csctl's ledger."""


def broken(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error says the file itself is bad (not merely busy)."""
    return getattr(exc, "sqlite_errorcode", None) in BROKEN or isinstance(exc, NotALedger)


class Ledger:
    """An open ledger. Use ``open_ledger``; close it when done (or use it in ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: all of it is committed, or none of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- VMs ----------------------------------------------------------------------------

    def see(self, vms: Iterable[VMUsage]) -> None:
        """Record sightings: a new VM is added; a known one keeps its first joined and
        drain times and moves its last sighting on (and runs again, if it was thought gone)."""
        self.db.executemany(
            f"INSERT INTO vms ({_VM_COLUMNS}) VALUES ({', '.join('?' * 15)}) "
            "ON CONFLICT (csctl_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), "
            "joined = coalesce(joined, excluded.joined), "
            "drain_started = coalesce(drain_started, excluded.drain_started), "
            "image = coalesce(image, excluded.image), terminated = NULL",
            vms,
        )

    def end(self, csctl_ids: Iterable[str]) -> None:
        """Mark VMs gone: terminated at the last cycle that saw them."""
        self.db.executemany(
            "UPDATE vms SET terminated = last_seen WHERE csctl_id = ? AND terminated IS NULL",
            ((i,) for i in csctl_ids),
        )

    def running(self) -> list[VMUsage]:
        """The VMs not known to be gone."""
        return self._vms("WHERE terminated IS NULL", ())

    def vms(self, ended_since: int | None = None, unpublished: bool = False) -> list[VMUsage]:
        """Every VM; with ``ended_since``, those running or gone since then (and, with
        ``unpublished``, those no APEL record was written for yet)."""
        if ended_since is None:
            return self._vms("", ())
        where = "WHERE terminated IS NULL OR terminated >= ?"
        if unpublished:
            where += " OR csctl_id NOT IN (SELECT csctl_id FROM published)"
        return self._vms(where, (ended_since,))

    def _vms(self, where: str, args: Sequence[object]) -> list[VMUsage]:
        rows = self.db.execute(f"SELECT {_VM_COLUMNS} FROM vms {where}", args)
        return list(map(VMUsage._make, rows))

    # -- jobs ---------------------------------------------------------------------------

    def add_jobs(self, jobs: Iterable[FinishedJob]) -> None:
        """Record finished jobs; a job already recorded (same GlobalJobId) is kept as is."""
        # a job's VM never changes, so (VM, job) is as unique as the job and keeps a VM's
        # jobs together on disk: reading one VM's jobs is one range of the table
        fields = attrgetter("job", "csctl_id", "owner", "group", "cores", "wall", "cpu", "ended")
        # owner and group are the submitter's words: SQLite cuts them to what APEL holds (the
        # schedd is part of the GlobalJobId)
        cut = f"substr(?, 1, {MAX_TEXT})"
        values = f"?, ?, {cut}, {cut}, ?, ?, ?, ?"
        self.db.executemany(
            f"INSERT OR IGNORE INTO jobs ({_JOB_COLUMNS}) VALUES ({values})", map(fields, jobs)
        )

    def jobs(self, csctl_ids: Iterable[str] | None = None, ended_since: int = 0) -> dict[str, list[JobUsage]]:
        """Finished jobs by csctl id: of the given VMs, or all that ended since ``ended_since``."""
        found: dict[str, list[JobUsage]] = {}
        if csctl_ids is None:
            query = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE ended >= ?"
            rows: Iterable[tuple[object, ...]] = self.db.execute(query, (ended_since,))
        else:
            self._want(csctl_ids)
            rows = self.db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE csctl_id IN (SELECT id FROM temp.wanted)"
            )
        make = JobUsage._make
        for row in rows:
            job = make(row)
            found.setdefault(job.csctl_id, []).append(job)
        return found

    def cpu_by_month(self, csctl_ids: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """csctl id -> month -> CPU seconds of the given VMs' jobs (all VMs' with None), as
        ``usage.cpu_by_month``: summed by SQLite for jobs that ran within one month, shared
        out here for the few that crossed a month boundary."""
        vm_jobs = "FROM jobs j"
        if csctl_ids is not None:
            self._want(csctl_ids)
            vm_jobs = "FROM temp.wanted w JOIN jobs j ON j.csctl_id = w.id"  # one range of the table per VM
        first, last = self.db.execute(f"SELECT min(j.ended - j.wall), max(j.ended) {vm_jobs}").fetchone()
        if first is None:
            return {}
        months = month_bounds(month_of(first), month_of(last))
        # the month a time falls in, as an index into ``months``: a few comparisons per job in C
        bucket = (
            "CASE " + " ".join(f"WHEN {{t}} < {hi} THEN {n}" for n, (_, _, hi) in enumerate(months)) + " END"
        )
        start, end = bucket.format(t="j.ended - j.wall"), bucket.format(t="j.ended")
        across = self.db.execute(f"SELECT {_J} {vm_jobs} WHERE {start} != {end}")
        found = cpu_by_month(map(JobUsage._make, across))
        for csctl_id, n, cpu in self.db.execute(
            f"SELECT j.csctl_id, {end} AS m, sum(j.cpu) {vm_jobs} WHERE {start} = {end} "
            "GROUP BY j.csctl_id, m"
        ):
            per_month = found.setdefault(csctl_id, {})
            per_month[months[n][0]] = per_month.get(months[n][0], 0.0) + cpu
        return found

    def job_totals(self, since: int, until: int, by: str) -> list[JobTotals]:
        """Jobs' parts in ``[since, until)`` summed per VM and owner (``by`` "owner"), group
        ("group") or VM alone (otherwise), as ``usage.job_totals``: SQLite sums the jobs that
        ran wholly inside the period, the few across its ends are shared out here."""
        key = {"owner": "owner", "group": "coalesce(acct_group, '')"}.get(by, "''")
        inside = "ended - wall >= ? AND ended < ?"
        summed = self.db.execute(
            f"SELECT csctl_id, {key}, sum(wall * max(cores, 1)), sum(cpu), count(*) FROM jobs "
            f"WHERE {inside} GROUP BY csctl_id, {key}",
            (since, until),
        )
        totals = list(map(JobTotals._make, summed))
        across = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE ended > ? AND ended - wall < ? AND NOT ({inside})",
            (since, until, since, until),
        )
        return totals + job_totals(map(JobUsage._make, across), since, until, by)

    def prune(self, before: int) -> tuple[int, int]:
        """Forget the VMs that ended before ``before`` (epoch seconds), with their jobs and
        the fingerprints of their records, and the jobs of VMs the ledger never held that
        ended before it; return how many VMs and jobs. Freed pages are reused by later
        rows, so the file stops growing once the oldest rows leave at the rate new come."""
        old = "SELECT csctl_id FROM vms WHERE terminated < ?"
        jobs = self.db.execute(f"DELETE FROM jobs WHERE csctl_id IN ({old})", (before,)).rowcount
        jobs += self.db.execute(
            "DELETE FROM jobs WHERE ended < ? AND csctl_id NOT IN (SELECT csctl_id FROM vms)", (before,)
        ).rowcount
        self.db.execute(f"DELETE FROM published WHERE csctl_id IN ({old})", (before,))
        vms = self.db.execute("DELETE FROM vms WHERE terminated < ?", (before,)).rowcount
        return vms, jobs

    def ran(self) -> set[str]:
        """The VMs that ran at least one job."""
        return {row[0] for row in self.db.execute("SELECT DISTINCT csctl_id FROM jobs")}

    def _want(self, csctl_ids: Iterable[str]) -> None:
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY)")
        self.db.execute("DELETE FROM temp.wanted")
        self.db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", ((i,) for i in csctl_ids))

    def marks(self) -> dict[str, str]:
        """Where each schedd's history was last read (schedd -> job id)."""
        return dict(self.db.execute("SELECT schedd, since FROM marks"))

    def set_marks(self, marks: dict[str, str]) -> None:
        """Move the schedds' marks on."""
        self.db.executemany("INSERT OR REPLACE INTO marks VALUES (?, ?)", marks.items())

    # -- APEL ---------------------------------------------------------------------------

    def published(self) -> dict[tuple[str, str], str]:
        """(csctl id, month) -> the fingerprint of the record last written out."""
        rows = self.db.execute("SELECT csctl_id, month, digest FROM published")
        return {(i, m): d for i, m, d in rows}

    def publish(self, written: Iterable[tuple[str, str, str]]) -> None:
        """Remember records written out: (csctl id, month, fingerprint)."""
        self.db.executemany("INSERT OR REPLACE INTO published VALUES (?, ?, ?)", written)

    def meta(self, key: str) -> str | None:
        """A value of the ledger's own (e.g. the time of the last APEL export)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ledger's own."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def open_ledger(state_dir: Path, now: datetime | None = None) -> tuple[Ledger, list[str]]:
    """The ledger of ``state_dir``, created (0600, in a 0700 directory) when missing. A file
    that is not a csctl ledger is moved aside and a new ledger started, with one warning;
    so is a ledger gone from a state directory csctl used before (it holds the backoff)."""
    path = state_dir / LEDGER_FILE
    lost = not os.path.lexists(path) and (state_dir / BACKOFF_FILE).exists()
    try:
        ledger = _open(path)
        return ledger, [
            f"{path}: not found; a new ledger starts (usage before now is not in it)"
        ] if lost else []
    except (sqlite3.Error, NotALedger) as exc:
        if isinstance(exc, sqlite3.Error) and not broken(exc):
            raise
        aside = set_aside(path, now or datetime.now(UTC))
        reason = exc if isinstance(exc, NotALedger) else f"unreadable: {exc}"
        warning = f"{path}: {reason}; moved to {aside.name}, accounting starts anew"
        return _open(path), [warning]


def ledger_for_command(state_dir: Path, now: datetime) -> tuple[Ledger, list[str]]:
    """``open_ledger`` for a command: a ledger that cannot be opened at all (an unusable
    state directory, a lock held too long) is a StateError, one line."""
    try:
        return open_ledger(state_dir, now)
    except (OSError, sqlite3.Error) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StateError(f"{state_dir / LEDGER_FILE}: cannot open the ledger ({detail})") from None


def set_aside(path: Path, now: datetime) -> Path:
    """Move a bad ledger (and its journal files) out of the way; return where it went."""
    aside = path.with_name(f"{path.name}.bad-{now.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)  # a journal of a bad file is no use
    os.replace(path, aside)
    return aside


def _open(path: Path) -> Ledger:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _ensure_file(path)
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        db.execute("PRAGMA page_size = 16384")  # a new file only: fewer, fuller pages for a long history
        db.execute("PRAGMA journal_mode = WAL")  # readers (report, apel) never wait for a cycle
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA temp_store = MEMORY")  # the VMs a query asks about, never on disk
        db.execute("PRAGMA cache_size = -65536")  # 64 MB: a first cycle may store a long history
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            db.executescript(f"BEGIN IMMEDIATE; {_TABLES} COMMIT;")
        elif "meta" not in tables or _schema(db) != str(SCHEMA):
            raise NotALedger("not a csctl ledger of schema 1")
    except BaseException:
        db.close()
        raise
    return Ledger(path, db)


def read_only_ledger(path: Path) -> Ledger:
    """The ledger at ``path`` opened for reading only (``csctl status``): nothing is
    created, repaired or moved aside. NotALedger for anything but a csctl ledger in a
    regular file; sqlite3.Error for one that cannot be read."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise NotALedger("not a regular file")
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables or _schema(db) != str(SCHEMA):
            raise NotALedger("not a csctl ledger of schema 1")
    except BaseException:
        db.close()
        raise
    return Ledger(path, db)


def _schema(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return None if row is None else str(row[0])


def _ensure_file(path: Path) -> None:
    """Create the ledger 0600 (SQLite gives its journal files the same mode) or check that
    the one there is a regular file: a symbolic link is never followed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        return
    except FileExistsError:
        pass
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotALedger("not a regular file")
    if mode & 0o077:
        os.chmod(path, 0o600)  # the ledger names users and groups: it is no one else's to read
