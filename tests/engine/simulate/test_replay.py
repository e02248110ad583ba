"""The simulator replays traces through csctl's own planners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csctl.engine.simulate import simulate
from csctl.engine.simulate.runner import Settings
from csctl.engine.simulate.traces import Trace, TraceJob, parse_swf
from csctl.errors import ConfigError
from testbed.tracegen import bursty_jobs, swf
from tests.engine.simulate.helpers import config

SETTINGS = Settings(seed=3, cycle=300, boot_time=(240.0, 60.0))


@pytest.fixture(scope="module")
def trace() -> Trace:
    return parse_swf(swf(bursty_jobs(400, 2.0, seed=7)).splitlines(), "bursty.swf")


def test_same_trace_configuration_and_seed_give_the_same_report(trace: Trace):
    first = json.dumps(simulate(config(), trace, SETTINGS).as_json(), sort_keys=True)
    again = json.dumps(simulate(config(), trace, SETTINGS).as_json(), sort_keys=True)
    assert first == again
    other_seed = simulate(config(), trace, Settings(seed=4, boot_time=(240.0, 60.0))).as_json()
    assert json.loads(first)["variants"][0]["boots"] > 0
    assert json.dumps(other_seed, sort_keys=True) != first  # the seed draws the boot delays


def test_every_job_is_accounted_for(trace: Trace):
    [result] = simulate(config(), trace, SETTINGS).variants
    assert result.jobs == len(trace.jobs)
    assert result.served + result.unservable + result.stranded == result.jobs
    assert result.served == result.jobs  # every job fits an 8-core type on an unlimited cloud
    assert 0 <= result.wait_seconds["p50"] <= result.wait_seconds["p95"] <= result.wait_seconds["max"]
    assert 0 < result.utilisation <= 1
    assert sum(result.core_hours_by_owner.values()) == pytest.approx(result.busy_core_hours, abs=0.1)
    assert result.boots >= result.boots_unused


def test_a_clouds_max_vms_is_never_exceeded(trace: Trace):
    [result] = simulate(config(a="max_vms = 2"), trace, SETTINGS).variants
    assert result.peak_vms["A"] <= 2  # plan_boot's limit, counted with the VMs still there
    assert result.peak_vms["B"] > 0  # the rest went to the next cloud by priority
    assert result.served == result.jobs


def test_no_room_anywhere_strands_the_jobs_and_ends(trace: Trace):
    limited = config(a="max_vms = 0").model_copy()
    no_b = limited.model_copy(update={"clouds": {"A": limited.clouds["A"]}})
    [result] = simulate(no_b, trace, SETTINGS).variants
    assert (result.served, result.boots, result.stranded) == (0, 0, result.jobs)


def test_a_longer_keep_alive_keeps_vms_longer(trace: Trace):
    [short] = simulate(config(keep_alive=0), trace, SETTINGS).variants
    [long] = simulate(config(keep_alive=120), trace, SETTINGS).variants
    assert long.vm_hours > short.vm_hours
    assert long.boots <= short.boots  # kept VMs take the next burst's jobs
    assert long.utilisation < short.utilisation


def test_the_per_cycle_cap_slows_the_response_to_a_burst(trace: Trace):
    [one] = simulate(config(per_cycle=1), trace, SETTINGS).variants
    [many] = simulate(config(per_cycle=50), trace, SETTINGS).variants
    assert one.wait_seconds["p95"] > many.wait_seconds["p95"]


def test_jobs_no_vm_type_holds_are_unservable_with_demands_reason():
    jobs = [TraceJob(t, 60, (("Owner", "u1"), ("RequestCpus", 16))) for t in (0, 10)]
    jobs += [TraceJob(5, 60, (("Owner", "u2"), ("RequestCpus", 1)))]
    trace = Trace("t", "swf", sorted(jobs, key=lambda j: j.submit))
    [result] = simulate(config(), trace, SETTINGS).variants
    assert (result.unservable, result.served) == (2, 1)
    assert [(u.jobs, u.reasons) for u in result.unservable_reasons] == [
        (2, ["asks 16 of cores; VM type std has 8"])
    ]


def test_boot_calls_refused_are_backed_off_and_counted(trace: Trace):
    settings = Settings(seed=3, boot_time=(240.0, 60.0), failure_rate=0.5)
    [result] = simulate(config(), trace, settings).variants
    assert result.boot_failures > 0
    assert result.served == result.jobs


def test_set_makes_variants_side_by_side(trace: Trace):
    report = simulate(config(), trace, SETTINGS, ["vm_types.std.keep_alive_minutes=0,120"])
    assert [v.label for v in report.variants] == [
        "vm_types.std.keep_alive_minutes=0",
        "vm_types.std.keep_alive_minutes=120",
    ]
    assert report.variants[1].settings == {"vm_types.std.keep_alive_minutes": 120}
    [alone] = simulate(config(keep_alive=120), trace, SETTINGS).variants
    assert report.variants[1].vm_hours == alone.vm_hours  # the variant is that configuration


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (
            "policy.max_new_vms_per_cycle=-1",
            "--set: policy.max_new_vms_per_cycle: expected an integer >= 0, got -1",
        ),
        ("policy.keep_alive_minutes=10", "--set: policy.keep_alive_minutes: unknown key"),
    ],
)
def test_a_bad_set_is_the_usual_configuration_error(trace: Trace, item: str, line: str):
    with pytest.raises(ConfigError) as caught:
        simulate(config(), trace, SETTINGS, [item])
    assert caught.value.problems == [line]


def test_trace_file_is_read(tmp_path: Path):
    from tests.engine.simulate.helpers import bursty_trace

    report = simulate(config(), bursty_trace(tmp_path / "t.swf", jobs=50), SETTINGS)
    assert report.trace["jobs"] == 50 and report.trace["format"] == "swf"


def test_history_vm_attributes_steer_the_planners(tmp_path: Path):
    ads = [
        {
            "QDate": 1000 + 60 * i,
            "RemoteWallClockTime": 600,
            "RequestCpus": 2,
            "Owner": "alice",
            "TargetClouds": "B",
        }
        for i in range(20)
    ]
    path = tmp_path / "history.json"
    path.write_text(json.dumps(ads))
    [result] = simulate(config(), path, SETTINGS).variants
    assert result.served == 20
    assert set(result.peak_vms) == {"B"}  # A has the higher priority, but the jobs name B
    assert result.core_hours_by_owner == {"alice": pytest.approx(20 * 2 * 600 / 3600, abs=0.01)}
