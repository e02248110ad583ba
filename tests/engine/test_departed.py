"""A cloud taken out of the configuration keeps being listed until csctl's VMs there are
gone; they are retired like those of a disabled cloud, never booted on or counted as room."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from csctl.config import parse_config
from csctl.engine.departed import CLOUDS_FILE, departed_clouds, remember_clouds
from csctl.model import Instance, VMState
from csctl.plan.demand import Demand
from csctl.plan.reconcile import reconcile
from csctl.plan.retire import Action, plan_retire
from csctl.plan.supply import booting_supply
from tests.plan.fleet import slot

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def config(tmp_path, clouds=("A", "B")):
    sections = "".join(f'[clouds.{c}]\ndriver = "local"\nwork_dir = "{tmp_path}/vms-{c}"\n' for c in clouds)
    images = ", ".join(f'{c} = "x"' for c in clouds)
    return parse_config(
        f'state_dir = "{tmp_path}/state"\n[pool]\nname = "p"\ncollector = "127.0.0.1"\n{sections}'
        f"[vm_types.t]\ncpus = 4\nmemory = 8000\ndisk = 10\nimages = {{ {images} }}\n"
    )


def test_a_cloud_taken_out_is_still_listed_from_the_record(tmp_path):
    assert remember_clouds(config(tmp_path), []) == []
    record = json.loads((tmp_path / "state" / CLOUDS_FILE).read_text())
    assert record["B"] == {"driver": "local", "work_dir": f"{tmp_path}/vms-B"}
    assert (tmp_path / "state" / CLOUDS_FILE).stat().st_mode & 0o777 == 0o600

    clouds, problems = departed_clouds(config(tmp_path, clouds=("A",)))
    assert list(clouds) == ["B"] and problems == []
    assert clouds["B"].name == "B" and clouds["B"].settings.work_dir.name == "vms-B"  # type: ignore[attr-defined]


def test_the_record_forgets_a_departed_cloud_once_it_lists_no_vm(tmp_path):
    remember_clouds(config(tmp_path), [])
    only_a = config(tmp_path, clouds=("A",))
    remember_clouds(only_a, ["B"])  # B still has VMs
    assert list(departed_clouds(only_a)[0]) == ["B"]
    remember_clouds(only_a, [])  # B is empty now
    assert departed_clouds(only_a) == ({}, [])


def test_a_departed_cloud_that_cannot_be_built_is_named_with_the_fix(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / CLOUDS_FILE).write_text(
        json.dumps({"Gone": {"driver": "nimbus"}, "Odd": {"driver": "local", "x": 1}})
    )
    clouds, problems = departed_clouds(config(tmp_path))
    assert clouds == {}
    assert len(problems) == 2 and all("left the configuration but cannot be listed" in p for p in problems)
    assert all(p.endswith(f"its entry from {state / CLOUDS_FILE}") for p in problems)


def test_a_garbage_record_costs_only_the_reminder(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / CLOUDS_FILE).write_text("[1, 2")
    clouds, problems = departed_clouds(config(tmp_path))
    assert clouds == {} and problems[0].startswith(f"{state / CLOUDS_FILE}: ignored, cannot be read")


def test_vms_of_a_departed_cloud_are_retired_and_are_no_room(tmp_path):
    only_a = config(tmp_path, clouds=("A",))
    vm = Instance("b-0123abcd-0", "B", "t", VMState.RUNNING, "p", NOW - timedelta(minutes=5))
    report = reconcile([vm], [slot("b-0123abcd-0", cloud="B")], only_a, NOW)
    plan = plan_retire(report, Demand([], [], [], 0), only_a, NOW)
    assert [(r.csctl_id, r.action, r.reason) for r in plan.retirements] == [
        ("b-0123abcd-0", Action.DRAIN, "cloud B is no longer configured")
    ]
    booting = Instance("b-0123abcd-1", "B", "t", VMState.BOOTING, "q", NOW)
    assert booting_supply([booting], [], only_a) == []


def test_services_list_the_departed_clouds_beside_the_configured_ones(tmp_path):
    from csctl.engine.services import Services

    remember_clouds(config(tmp_path), [])
    services = Services(config(tmp_path, clouds=("A",)))
    assert sorted(services.clouds) == ["A", "B"] and services.cloud_warnings == []
