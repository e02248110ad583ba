"""The ledger's job history, read while a cycle takes its snapshot: the ledger records
exactly what it would have read itself, and the pool is asked once per cycle."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from csctl.engine.accounting.ledger import LEDGER_FILE, open_ledger
from csctl.engine.accounting.record import update_ledger
from csctl.engine.ahead import history_ahead, read_yet
from csctl.model import Snapshot
from tests.engine.test_ledger import T0, HistoryPool, config, finished


def test_the_history_read_ahead_is_the_one_the_ledger_records(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    pool.jobs = [finished(1)]
    for hour, jobs in ((0, [finished(1)]), (1, [finished(1), finished(2), finished(3)])):
        pool.jobs = jobs
        with ThreadPoolExecutor(max_workers=1) as executor:
            ahead = history_ahead(cfg, pool, executor)
            assert update_ledger(cfg, ahead, Snapshot(), T0 + timedelta(hours=hour)) == []
    # no ledger yet: read from the start; then from the first cycle's mark, once a cycle
    assert pool.asked == [{}, {"s": "s#1.0#1"}]
    ledger, _ = open_ledger(cfg.state_dir)
    with ledger:
        assert sorted(j.job for jobs in ledger.jobs().values() for j in jobs) == [
            "s#1.0#1",
            "s#2.0#1",
            "s#3.0#1",
        ]
        assert ledger.marks() == {"s": "s#3.0#1"}


def test_marks_moved_meanwhile_are_read_again(tmp_path):
    cfg, pool = config(tmp_path), HistoryPool()
    pool.jobs = [finished(1), finished(2)]
    with ThreadPoolExecutor(max_workers=1) as executor:
        ahead = history_ahead(cfg, pool, executor)
        assert ahead.job_history({"s": "s#1.0#1"}).jobs == [finished(2)]
    assert pool.asked == [{}, {"s": "s#1.0#1"}]


def test_without_a_ledger_or_a_readable_one_nothing_is_read_ahead(tmp_path):
    pool = HistoryPool()
    with ThreadPoolExecutor(max_workers=1) as executor:
        assert history_ahead(config(tmp_path, "[accounting]\nledger = false\n"), pool, executor) is pool
        cfg = config(tmp_path)
        cfg.state_dir.mkdir(parents=True)
        (cfg.state_dir / LEDGER_FILE).write_text("not a ledger")
        assert history_ahead(cfg, pool, executor) is pool
    assert pool.asked == []


def test_a_cycle_knows_when_the_history_read_ahead_is_in(tmp_path):
    """run judges a large queue in forked processes only once the history's thread has
    ended (csctl/engine/cycle.py): read_yet says when it may end it."""
    gate = threading.Event()

    class SlowHistory(HistoryPool):
        def job_history(self, marks):
            gate.wait(10)
            return super().job_history(marks)

    pool = SlowHistory()
    threads = threading.active_count()
    assert read_yet(pool)  # nothing read ahead: nothing to wait for
    with ThreadPoolExecutor(max_workers=1) as executor:
        ahead = history_ahead(config(tmp_path), pool, executor)
        assert not read_yet(ahead)
        gate.set()
        ahead.job_history({})
        assert read_yet(ahead)
        executor.shutdown()
        assert threading.active_count() == threads  # its thread has ended
