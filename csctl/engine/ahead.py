"""The schedds' job history, asked for while a cycle takes its snapshot.

The accounting ledger reads the jobs that left the queue since its marks (one history
query per schedd) at the end of a cycle. That query does not depend on anything the
cycle decides, and it can be long (a schedd with no mark yet scans its whole history
file: about 3 s for 150,000 jobs on the test bed), so a cycle starts it at once, next to
the snapshot's queries, and the ledger takes its answer when it gets there.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from typing import Any, cast

from csctl.config import Config
from csctl.engine.accounting.ledger import LEDGER_FILE, NotALedger, read_only_ledger
from csctl.model import JobHistory, Pool


class _HistoryAhead:
    """The pool, its job history already being read for ``marks``. Asked for other marks
    (the ledger moved meanwhile), it asks the pool again; everything else is the pool's."""

    def __init__(self, pool: Pool, marks: dict[str, str], answer: Future[JobHistory]) -> None:
        self._pool, self._marks, self._answer = pool, marks, answer

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        """The history read ahead when ``marks`` are the ones it was read for."""
        if dict(marks) == self._marks:
            return self._answer.result()
        return self._pool.job_history(marks)

    def answered(self) -> bool:
        """Whether the history read ahead is in (or its read failed)."""
        return self._answer.done()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


def history_ahead(config: Config, pool: Pool, executor: Executor) -> Pool:
    """``pool``, whose job history for the ledger's present marks is being read in
    ``executor``; ``pool`` itself when there is no ledger to update, the pool reads no
    history, or the marks cannot be read without repairing the ledger (the ledger's own
    update does that, and reads the history then)."""
    if not config.accounting.ledger or getattr(pool, "job_history", None) is None:
        return pool
    marks = _marks(config)
    if marks is None:
        return pool
    return cast(Pool, _HistoryAhead(pool, marks, executor.submit(pool.job_history, marks)))


def read_yet(pool: Pool) -> bool:
    """Whether the history read ahead for ``pool`` (by ``history_ahead``) is in; True
    when none was asked for."""
    return not isinstance(pool, _HistoryAhead) or pool.answered()


def _marks(config: Config) -> dict[str, str] | None:
    """The ledger's marks ({} when there is no ledger yet: a new one has none), or None."""
    path = config.state_dir / LEDGER_FILE
    if not os.path.lexists(path):
        return {}
    try:
        with read_only_ledger(path) as ledger:
            return ledger.marks()
    except (OSError, sqlite3.Error, NotALedger):
        return None
