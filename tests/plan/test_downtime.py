"""Declared downtimes (pure): cron schedules, windows and their clock edges, overlaps,
what an outage keeps out of a boot plan, and which VMs it drains or terminates."""

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csctl.errors import InputError
from csctl.plan.cron import CronError, parse_cron
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.downtime import (
    AtStart,
    Downtime,
    Phase,
    Severity,
    effects,
    keep_out,
    phase,
    retire_for_downtimes,
)
from csctl.plan.downtime_rules import Request, build, from_json, parse_duration, to_json
from csctl.plan.placement import plan_boot
from csctl.plan.reconcile import reconcile
from csctl.plan.retire import Action, plan_retire
from tests.plan.fleet import NOW, busy, config, inst, slot

MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


def one(start, end, **kw):
    return Downtime(id="1", cloud="A", start=start, end=end, **kw)


# -- cron -------------------------------------------------------------------------------


def test_cron_fields_lists_ranges_steps_and_names():
    cron = parse_cron("*/15 9-17 * * mon-fri")
    assert cron.minutes == (0, 15, 30, 45) and cron.hours == tuple(range(9, 18))
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse_cron("0 0 1 jan,jul *").months == frozenset({1, 7})
    assert parse_cron("@daily") == dataclasses.replace(parse_cron("0 0 * * *"), text="@daily")
    assert parse_cron("0 0 * * 7").weekdays == frozenset({0})  # 7 is Sunday as well


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "expected five fields"),
        ("61 * * * *", "minute '61' is outside 0-59"),
        ("* * * * funday", "day of week 'funday' is not a number"),
        ("*/0 * * * *", "minute '*/0' is outside 0-59"),
        ("5-1 * * * *", "minute '5-1' is outside 0-59"),
    ],
)
def test_cron_errors_name_the_field(text, message):
    with pytest.raises(CronError, match=re.escape(message)):
        parse_cron(text)


def test_cron_next_and_last_match():
    cron = parse_cron("0 22 * * 6")  # Saturdays 22:00; NOW is Wednesday 2026-11-25 12:00
    assert cron.next_after(NOW) == datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    assert cron.next_after(datetime(2026, 11, 28, 22, 0, tzinfo=UTC)) == datetime(2026, 12, 5, 22, tzinfo=UTC)
    assert cron.last_at_or_before(NOW, NOW - timedelta(days=7)) == datetime(2026, 11, 21, 22, tzinfo=UTC)
    assert cron.last_at_or_before(NOW, NOW - timedelta(days=1)) is None


def test_cron_restricted_day_of_month_and_week_match_either():
    cron = parse_cron("0 0 13 * 5")  # the 13th, or any Friday (crontab(5))
    assert cron.matches(datetime(2026, 11, 13, tzinfo=UTC))  # a Friday the 13th
    assert cron.matches(datetime(2026, 11, 27, tzinfo=UTC))  # a Friday
    assert cron.matches(datetime(2026, 12, 13, tzinfo=UTC))  # a Sunday the 13th
    assert not cron.matches(datetime(2026, 11, 26, tzinfo=UTC))


def test_leap_day_schedule_is_found_years_ahead():
    assert parse_cron("0 0 29 2 *").next_after(NOW) == datetime(2028, 2, 29, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 59), st.integers(0, 23), st.integers(0, 6), st.integers(0, 10_000))
def test_next_match_is_a_match_and_nothing_earlier_is(minute, hour, weekday, offset):
    cron = parse_cron(f"{minute} {hour} * * {weekday}")
    start = NOW + timedelta(minutes=offset * 7)
    found = cron.next_after(start)
    assert found is not None and found > start and cron.matches(found)
    assert found - start <= timedelta(days=7)


# -- windows and clock edges ------------------------------------------------------------------


def test_one_window_includes_its_start_and_excludes_its_end():
    d = one(NOW, NOW + timedelta(hours=2))
    assert phase(d, NOW - SEC, 0) is Phase.UPCOMING
    assert phase(d, NOW, 0) is Phase.ACTIVE
    assert phase(d, NOW + timedelta(hours=2) - SEC, 0) is Phase.ACTIVE
    assert phase(d, NOW + timedelta(hours=2), 0) is Phase.ENDED


def test_drain_ahead_lead_starts_exactly_lead_minutes_before():
    d = one(NOW + 30 * MIN, NOW + 60 * MIN)
    assert phase(d, NOW + 10 * MIN - SEC, 20) is Phase.UPCOMING
    assert phase(d, NOW + 10 * MIN, 20) is Phase.AHEAD
    assert phase(d, NOW + 30 * MIN, 20) is Phase.ACTIVE


def test_recurring_window_open_now_and_next():
    d = Downtime(id="r", vm_type="t", schedule="0 22 * * *", duration_minutes=8 * 60)
    night = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    assert d.window(night) == (datetime(2026, 11, 25, 22, tzinfo=UTC), datetime(2026, 11, 26, 6, tzinfo=UTC))
    assert phase(d, night, 0) is Phase.ACTIVE
    six = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # the end is excluded
    assert d.window(six) == (datetime(2026, 11, 26, 22, tzinfo=UTC), datetime(2026, 11, 27, 6, tzinfo=UTC))
    assert phase(d, datetime(2026, 11, 25, 22, tzinfo=UTC), 0) is Phase.ACTIVE
    last = datetime(2026, 11, 26, 5, 59, 59, 999_999, tzinfo=UTC)  # the window's last instant
    assert d.window(last) == (datetime(2026, 11, 25, 22, tzinfo=UTC), six)


# -- declaring ----------------------------------------------------------------------------------


def declare(existing=(), **kw):
    return build(Request(**kw), config(), list(existing), "9", NOW)


def test_declare_one_window_with_a_duration_and_read_it_back():
    d = declare(cloud="A", start="2026-11-25T13:00Z", duration="1h30m", reason="kernel")
    assert (d.start, d.end) == (NOW + 60 * MIN, NOW + 150 * MIN)
    assert from_json(to_json(d)) == d
    assert d.describe(NOW) == "downtime 9 (cloud A, outage 2026-11-25 13:00 UTC-2026-11-25 14:30 UTC: kernel)"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cloud": "A", "start": "tomorrow", "duration": "1h"}, "--start 'tomorrow': not an ISO 8601 time"),
        ({"cloud": "A", "start": "2026-11-25T13:00", "end": "2026-11-25T12:30"}, "is not after --start"),
        ({"cloud": "Z", "duration": "1h"}, "unknown cloud 'Z' (known: A, B)"),
        ({"vm_type": "big", "duration": "1h"}, "unknown VM type 'big' (known: t)"),
        ({"cloud": "A", "image": "nope", "duration": "1h"}, "unknown image 'nope' on cloud A (known: x)"),
        ({"image": "x", "duration": "1h"}, "give one scope"),
        ({"cloud": "A", "vm_type": "t", "duration": "1h"}, "give one scope"),
        ({"cloud": "A", "duration": "8 hours"}, "--duration '8 hours': expected e.g. 90m"),
        ({"cloud": "A"}, "give --end or --duration"),
        ({"cloud": "A", "schedule": "0 22 * * *"}, "--schedule takes --duration"),
        ({"cloud": "A", "schedule": "0 25 * * *", "duration": "1h"}, "hour '25' is outside 0-23"),
        ({"cloud": "A", "start": "2026-11-24T10:00Z", "duration": "1h"}, "already over"),
    ],
)
def test_declare_errors_are_one_line(kw, message):
    with pytest.raises(InputError, match=re.escape(message)) as exc:
        declare(**kw)
    assert "\n" not in exc.value.message


def test_overlaps_that_contradict_are_refused_and_others_accepted():
    first = declare(cloud="A", start="2026-11-25T13:00Z", duration="2h")
    with pytest.raises(InputError, match="overlaps downtime 9"):
        declare([first], cloud="A", start="2026-11-25T14:00Z", duration="2h", severity="warning")
    with pytest.raises(InputError, match="overlaps"):
        declare([first], cloud="A", start="2026-11-25T14:00Z", duration="2h", at_start="terminate")
    # same meaning, other scope, or touching windows: no contradiction
    assert declare([first], cloud="A", start="2026-11-25T14:00Z", duration="2h")
    assert declare([first], cloud="B", start="2026-11-25T14:00Z", duration="2h", severity="warning")
    assert declare([first], cloud="A", start="2026-11-25T15:00Z", duration="2h", severity="warning")


def test_recurring_windows_that_contradict_are_found_weeks_ahead():
    weekly = declare(vm_type="t", schedule="0 22 * * 6", duration="8h")  # Saturday nights
    with pytest.raises(InputError, match="overlaps downtime 9 \\(type t, outage"):
        declare([weekly], vm_type="t", start="2026-12-20T01:00Z", duration="1h", severity="warning")
    assert declare([weekly], vm_type="t", start="2026-12-20T06:00Z", duration="1h", severity="warning")
    nightly = declare(vm_type="t", schedule="@daily", duration="1h", severity="warning")
    with pytest.raises(InputError, match="overlaps"):
        declare([nightly], vm_type="t", schedule="30 0 * * 0", duration="1h")


def test_durations():
    assert [parse_duration(t) for t in ("90m", "8h", "1d12h", "2h30m")] == [90, 480, 2160, 150]


# -- effects ---------------------------------------------------------------------------------


def demand_for_t(clouds=("A", "B")):
    return Demand([VMRequirement("t", list(clouds), idle_jobs=2, vms_needed=2)], [], 2)


def test_outage_sends_the_boot_plan_to_the_other_cloud_and_says_why():
    cfg = config()
    d = one(NOW, NOW + 60 * MIN, reason="upgrade")
    allowed, lines = keep_out(demand_for_t(), cfg, effects([d], NOW, 30))
    plan = plan_boot(allowed, [], cfg)
    assert {(i.cloud, i.count) for i in plan.items} == {("B", 2)}
    assert lines == [
        "t on A kept out by downtime 1 (cloud A, outage 2026-11-25 12:00 UTC-2026-11-25 13:00 UTC: upgrade)"
    ]


def test_outage_within_its_lead_keeps_boots_out_and_not_before():
    d = one(NOW + 30 * MIN, NOW + 60 * MIN)
    assert keep_out(demand_for_t(), config(), effects([d], NOW, 30))[0].requirements[0].clouds == ["B"]
    assert keep_out(demand_for_t(), config(), effects([d], NOW, 29))[0].requirements[0].clouds == ["A", "B"]
    # and at the end of the window the cloud is back
    assert keep_out(demand_for_t(), config(), effects([d], NOW + 60 * MIN, 30))[0].requirements[0].clouds == [
        "A",
        "B",
    ]


def test_image_and_type_scopes():
    cfg = config()
    image_out = Downtime(id="i", cloud="A", image="x", start=NOW, end=NOW + MIN)
    other_image = Downtime(id="j", cloud="A", image="other", start=NOW, end=NOW + MIN)
    type_out = Downtime(id="k", vm_type="t", start=NOW, end=NOW + MIN)
    assert keep_out(demand_for_t(), cfg, effects([image_out], NOW, 0))[0].requirements[0].clouds == ["B"]
    assert keep_out(demand_for_t(), cfg, effects([other_image], NOW, 0))[0].requirements[0].clouds == [
        "A",
        "B",
    ]
    assert keep_out(demand_for_t(), cfg, effects([type_out], NOW, 0))[0].requirements[0].clouds == []


def test_warning_boots_as_usual_and_is_reported():
    found = effects([one(NOW, NOW + MIN, severity=Severity.WARNING)], NOW, 30)
    allowed, lines = keep_out(demand_for_t(), config(), found)
    assert allowed.requirements[0].clouds == ["A", "B"] and lines == []
    assert found.warnings == [
        "downtime 1 (cloud A, warning 2026-11-25 12:00 UTC-2026-11-25 12:01 UTC): booting as usual"
    ]


def test_service_outage_boots_nothing_and_holds_every_retirement():
    cfg = config()
    service = Downtime(id="s", service=True, start=NOW, end=NOW + MIN, reason="CM upgrade")
    found = effects([service], NOW, 30)
    assert keep_out(demand_for_t(), cfg, found)[0].requirements[0].clouds == []
    joins = reconcile([inst("a")], [slot("a", idle_minutes=600)], cfg, NOW)
    plan = plan_retire(joins, Demand([], [], 0), cfg, NOW, hold=found.hold())
    assert plan.retirements == [] and "CM upgrade" in plan.held[0]
    assert effects([service], NOW - SEC, 30).hold() == []  # ahead of it nothing is held


def retire(instances, slots, downtimes, now=NOW, lead=30):
    cfg = config()
    joins = reconcile(instances, slots, cfg, now)
    cfg = cfg.model_copy(
        update={"policy": cfg.policy.model_copy(update={"downtime_drain_ahead_minutes": lead})}
    )
    return retire_for_downtimes(plan_retire(joins, demand_for_t(), cfg, now), joins, downtimes, cfg, now)


def test_busy_vm_in_scope_is_drained_from_the_lead_on_and_others_are_kept():
    d = one(NOW + 30 * MIN, NOW + 90 * MIN)
    p = retire([inst("a"), inst("b", "B")], busy("a") + busy("b", "B"), [d])
    assert [(r.csctl_id, r.action) for r in p.retirements] == [("a", Action.DRAIN)]
    assert "starts at 2026-11-25 12:30 UTC: draining" in p.retirements[0].reason
    assert p.kept == {"b": "running jobs"}
    assert retire([inst("a")], busy("a"), [d], now=NOW - SEC).retirements == []


def test_shorter_max_job_retirement_time_drains_later():
    d = one(NOW + 30 * MIN, NOW + 90 * MIN)
    slots = [dataclasses.replace(s, max_job_retirement_seconds=600) for s in busy("a")]
    assert retire([inst("a")], slots, [d]).retirements == []  # drains 10 min before, not 30
    assert [r.action for r in retire([inst("a")], slots, [d], now=NOW + 20 * MIN).retirements] == [
        Action.DRAIN
    ]


def test_at_the_start_vms_still_there_are_terminated_when_the_downtime_says_so():
    drain = one(NOW - MIN, NOW + 60 * MIN)
    end = one(NOW - MIN, NOW + 60 * MIN, at_start=AtStart.TERMINATE)
    draining = busy("a", draining=True)
    assert retire([inst("a")], draining, [drain]).retirements == []  # already draining: let it finish
    p = retire([inst("a")], draining, [end])
    assert [(r.action, r.jobs) for r in p.retirements] == [(Action.TERMINATE, ("7.0",))]
    assert retire([inst("a")], busy("a"), [one(NOW - 60 * MIN, NOW)]).retirements == []  # over
