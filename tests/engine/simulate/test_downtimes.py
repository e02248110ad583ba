"""`csctl simulate --downtimes`: declared downtimes act in the replay as in `csctl run`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from csctl.engine.simulate import simulate
from csctl.engine.simulate.runner import Settings
from csctl.engine.simulate.traces import Trace, parse_swf
from csctl.errors import InputError
from csctl.plan.downtime import SCHEMA
from testbed.tracegen import bursty_jobs, swf
from tests.engine.simulate.helpers import config

SETTINGS = Settings(seed=5, cycle=300, boot_time=(240.0, 60.0))
HOUR = 3600


@pytest.fixture(scope="module")
def trace() -> Trace:
    return parse_swf(swf(bursty_jobs(300, 1.0, seed=3)).splitlines(), "bursty.swf")


def _file(tmp_path: Path, *entries: dict[str, object]) -> Path:
    path = tmp_path / "downtimes.json"
    path.write_text(json.dumps({"schema": SCHEMA, "next_id": len(entries) + 1, "downtimes": list(entries)}))
    return path


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def test_an_outage_of_the_first_cloud_sends_every_boot_to_the_other(trace: Trace, tmp_path: Path):
    plain = simulate(config(a="max_vms = 50"), trace, SETTINGS).variants[0]
    assert plain.peak_vms.get("A", 0) > 0  # A has the higher priority
    end = trace.jobs[-1].submit + 20 * HOUR
    outage = _file(tmp_path, {"id": "1", "cloud": "A", "start": _iso(0), "end": _iso(end), "reason": "r"})
    result = simulate(config(a="max_vms = 50"), trace, SETTINGS, downtimes_path=outage)
    [variant] = result.variants
    assert variant.peak_vms.get("A", 0) == 0 and variant.peak_vms["B"] > 0
    assert variant.served == plain.served
    assert result.as_json()["downtimes"] == ["1 (cloud A, outage)"]


def test_a_service_outage_boots_nothing_until_it_ends_then_serves_the_queue(trace: Trace, tmp_path: Path):
    first = trace.jobs[0].submit
    end = first + 4 * HOUR
    service = _file(tmp_path, {"id": "7", "service": True, "start": _iso(0), "end": _iso(end)})
    result = simulate(config(), trace, SETTINGS, downtimes_path=service)
    [timeline] = result.timelines
    assert all(s.cores == 0 for s in timeline if first + s.t < end)
    assert any(s.cores > 0 for s in timeline if first + s.t >= end)
    [variant] = result.variants
    assert variant.served == len(trace.jobs) - variant.unservable
    assert (
        variant.wait_seconds["max"] is not None
        and variant.wait_seconds["max"] >= end - first - SETTINGS.cycle
    )


def test_a_file_that_is_not_a_downtimes_file_is_one_line(trace: Trace, tmp_path: Path):
    bad = tmp_path / "downtimes.json"
    bad.write_text('{"downtimes": 3}')
    with pytest.raises(InputError, match=r"downtimes.json: not a csctl downtimes file"):
        simulate(config(), trace, SETTINGS, downtimes_path=bad)
    wrong = _file(tmp_path, {"id": "1", "cloud": "A", "start": "soon", "end": _iso(10)})
    with pytest.raises(InputError, match=r"downtimes.json: downtime 1: start 'soon': not an ISO 8601 time"):
        simulate(config(), trace, SETTINGS, downtimes_path=wrong)
