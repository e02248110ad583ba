"""``csctl status``: its help, the layout it draws, and an unreachable pool."""

from __future__ import annotations

import pytest
from rich.console import Console

from csctl.cli._status_render import render
from csctl.engine.status import CloudStatus, StatusReport
from csctl.errors import ExitCode
from tests.cli.configs import UNREACHABLE, flat, write_config


def report() -> StatusReport:
    hermes = CloudStatus(
        "Hermes",
        enabled=True,
        vms={"busy": 3, "draining": 1},
        used={"vms": 4, "cores": 16},
        limits={"vms": 10, "cores": None},
        quota={"instances": 6, "cores": 24, "memory_mb": None, "vCPUs L-1216C47A": 14},
        backoff_images={"ami-1": "2026-11-25T12:07:00+00:00"},
        downtime_next="downtime 2 (cloud Hermes, outage 2026-11-26 08:00 UTC-2026-11-26 12:00 UTC)",
    )
    fghotel = CloudStatus(
        "FGHotel",
        enabled=False,
        quota_error="cloud not listed this time",
        backoff_until="2026-11-25T12:30:00+00:00",
        backoff_failures=3,
        downtime_active="downtime 1 (cloud FGHotel, outage 2026-11-25 10:00 UTC-2026-11-25 14:00 UTC: disk)",
    )
    return StatusReport(
        time="2026-11-25T12:00:00+00:00",
        clouds=[hermes, fghotel],
        demand={"idle_jobs": 120, "unservable_jobs": 2, "vms_needed": {"pandacernvm": 5}},
        last_cycle={"started": "2026-11-25T11:55:00+00:00", "seconds": 2.5, "exit_code": 4, "summary": "s"},
        errors=["cloud FGHotel: credentials rejected"],
    )


def text(renderable) -> str:
    console = Console(width=200, no_color=True, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_screen_shows_each_cloud_the_demand_and_the_last_cycle():
    screen = text(render(report()))
    assert screen.splitlines()[0] == "csctl status at 2026-11-25T12:00:00 UTC"
    assert "error: cloud FGHotel: credentials rejected" in screen
    hermes = next(line for line in screen.splitlines() if "Hermes" in line and "busy" in line)
    assert (
        "3 busy, 1 draining" in hermes
        and "4/10 VMs, 16/- cores" in hermes
        and "6 instances, 24 cores, 14 vCPUs L-1216C47A" in hermes
    )
    assert "image ami-1 until 12:07:00" in screen and "next: downtime 2 (cloud Hermes" in screen
    fghotel = next(line for line in screen.splitlines() if "FGHotel" in line and " no " in line)
    assert "until 12:30:00 (3 failures)" in fghotel and "NOW: downtime 1 (cloud FGHotel" in fghotel
    assert "demand: 120 idle jobs (2 unservable); new VMs needed: 5 pandacernvm" in screen
    assert "last cycle: 2026-11-25T11:55:00, 2.5 s, exit 4: s" in screen


def test_a_service_downtime_is_on_top_and_no_cycle_is_said_plainly():
    r = report()
    r.service_downtime, r.last_cycle = "downtime 3 (service, outage ...)", None
    screen = text(render(r))
    assert screen.splitlines()[1] == "SERVICE DOWNTIME: downtime 3 (service, outage ...)"
    assert "last cycle: none recorded in the state directory" in screen


def test_json_form_and_the_ledgers_last_24_hours():
    data = report().to_json()
    assert data["schema"] == "csctl.status/1" and data["ledger"] is None
    assert data["clouds"][0]["vms"] == {"busy": 3, "draining": 1}
    assert "last 24 h: no accounting ledger yet (csctl run starts it)" in text(render(report()))
    r = report()
    r.ledger = {"provisioned_core_hours": 96.0, "busy_core_hours": 84.5, "utilisation": 0.8802}
    r.ledger |= {"vm_hours": 12.0, "jobs": 310, "never_ran_a_job": 1}
    line = "last 24 h: utilisation 88% (84.5 of 96.0 core-hours busy), 12.0 VM-hours, 310 jobs,"
    assert line in flat(text(render(r)))


def test_help_and_an_unreachable_pool(csctl, tmp_path):
    help_text = flat(csctl("status", "--help", config=None).stdout)
    assert "--watch SECONDS" in help_text and "csctl status --watch 10" in help_text
    result = csctl("status", config=write_config(tmp_path))
    assert result.exit_code == ExitCode.POOL_UNREACHABLE
    assert result.stderr.startswith(UNREACHABLE) and result.stdout == ""
    bad = csctl("status", "--watch", "0", config=write_config(tmp_path))
    assert bad.exit_code == ExitCode.USAGE and "0.0 is not in the range x>=1" in bad.stderr


def test_watch_redraws_in_place_until_interrupted(monkeypatch, tmp_path):
    from csctl.cli.app import Application
    from csctl.cli.status import _watch
    from csctl.config import parse_config
    from csctl.console import Console
    from csctl.engine.services import Services
    from tests.engine.test_downtime import Cloud, Pool
    from tests.plan.fleet import CONFIG, NOW

    config = parse_config(f'state_dir = "{tmp_path}"\n' + CONFIG.format(lifetime=0, b_enabled="true"))
    looks = []

    class CountingPool(Pool):
        def csctl_slots(self):
            looks.append(1)
            return []

    def sleep(seconds):  # the clock is the process edge: the second wait is a Ctrl-C
        assert seconds == 5
        if len(looks) > 1:
            raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", sleep)
    app = Application(tmp_path / "csctl.toml", Console(), debug=False)
    pool, clouds = CountingPool(), {"A": Cloud("A"), "B": Cloud("B")}
    app.__dict__["services"] = Services(
        config, make_pool=lambda: pool, make_clouds=lambda: clouds, clock=lambda: NOW
    )
    with pytest.raises(KeyboardInterrupt):
        _watch(app, 5)
    assert len(looks) == 2  # a fresh look at the pool per refresh
