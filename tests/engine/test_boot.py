"""Applying a boot plan against real EC2 APIs (moto): partial failure, halving, backoff."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import SigningKey
from csctl.engine.boot import execute_boot
from csctl.engine.state import load_backoff, save_backoff
from csctl.plan.backoff import BASE_DELAY, Backoff
from csctl.plan.placement import BootItem, BootPlan
from testbed.fixtures_moto import error_response, grant_max_count

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY = SigningKey("POOL", os.urandom(32))


@pytest.fixture
def setup(ec2):
    config = parse_config(
        '[pool]\nname = "p"\ncollector = "127.0.0.1"\n'
        + "".join(
            f'[clouds.{c}]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
            f'endpoint_url = "{ec2.endpoint}"\nmax_attempts = 1\n'
            for c in ("good", "full", "broken")
        )
        + f'[vm_types.t]\ncpus = 2\nmemory = 1000\ndisk = 10\nimages = {{ good = "{ec2.image_id()}" }}\n'
    )
    clouds = {name: make_cloud(name, config.clouds[name]) for name in config.clouds}
    calls: dict[str, int] = {}
    for name, cloud in clouds.items():
        grant_max_count(cloud.client)  # type: ignore[attr-defined]

        def count(name=name, **_):
            calls[name] = calls.get(name, 0) + 1

        cloud.client.meta.events.register("before-send.ec2.RunInstances", count)  # type: ignore[attr-defined]
    return config, clouds, calls


def fail(cloud, code: str) -> None:
    cloud.client.meta.events.register(
        "before-send.ec2.RunInstances", lambda **_: error_response(code, "injected")
    )


def plan(ec2, **counts: int) -> BootPlan:
    image = ec2.image_id()
    return BootPlan(
        [
            BootItem(c, "t", n, image if c != "broken" else "ami-00000000", "t3.micro")
            for c, n in counts.items()
        ],
        [],
    )


def test_one_failing_cloud_does_not_stop_the_others_and_capacity_errors_halve(ec2, setup):
    config, clouds, calls = setup
    fail(clouds["full"], "InsufficientInstanceCapacity")
    fail(clouds["broken"], "InvalidAMIID.NotFound")
    backoff = Backoff()
    report = execute_boot(plan(ec2, good=3, full=4, broken=2), clouds, config, KEY, NOW, backoff)
    outcomes = {o.cloud: o for o in report.outcomes}
    assert len(outcomes["good"].started) == 3 and outcomes["good"].error is None
    # 4, then 2, then 1: three calls, then it gives up for this cycle
    assert (outcomes["full"].calls, outcomes["full"].started, outcomes["full"].error_kind) == (
        3,
        [],
        "capacity",
    )
    assert (outcomes["broken"].calls, outcomes["broken"].error_kind) == (1, "bad-request")
    assert calls == {"good": 1, "full": 3, "broken": 1}
    assert report.partial and report.started == 3
    # the full cloud is backed off; for the rejected image, that image on that cloud
    assert set(backoff.active(NOW)) == {"full", "broken/ami-00000000"}
    assert backoff.until["full"] == NOW + BASE_DELAY


def test_a_capacity_error_asks_again_for_half_as_many(ec2, setup):
    config, clouds, _ = setup
    asked: list[int] = []

    def room_for_one(request, **_):
        count = int(
            parse_qs(request.body if isinstance(request.body, str) else request.body.decode())["MaxCount"][0]
        )
        asked.append(count)
        return error_response("InsufficientInstanceCapacity", "injected") if count > 1 else None

    clouds["full"].client.meta.events.register("before-send.ec2.RunInstances", room_for_one)
    backoff = Backoff()
    (outcome,) = execute_boot(plan(ec2, full=4), clouds, config, KEY, NOW, backoff).outcomes
    assert asked == [4, 2, 1]
    # one started; the error says why not the other three
    assert (len(outcome.started), outcome.error_kind) == (1, "capacity")
    assert outcome.error == "cloud full: RunInstances failed: InsufficientInstanceCapacity: injected"


def test_a_rejected_image_is_backed_off_not_its_sibling_of_the_same_type(ec2, setup):
    config, clouds, _ = setup
    good_image = ec2.image_id()

    def reject_unknown(request, **_):
        body = request.body if isinstance(request.body, str) else request.body.decode()
        if parse_qs(body)["ImageId"][0] != good_image:
            return error_response("InvalidAMIID.NotFound", "injected")
        return None

    clouds["good"].client.meta.events.register("before-send.ec2.RunInstances", reject_unknown)
    items = [BootItem("good", "t", 1, image, "t3.micro") for image in ("ami-0badbad0", good_image)]
    backoff = Backoff()
    report = execute_boot(BootPlan(items, []), clouds, config, KEY, NOW, backoff)
    assert [(len(o.started), o.error_kind) for o in report.outcomes] == [(0, "bad-request"), (1, None)]
    assert set(backoff.active(NOW)) == {"good/ami-0badbad0"}


def test_backoff_grows_and_a_success_resets_it(tmp_path):
    backoff = Backoff()
    # a first failure sits out the next five-minute cron cycle, and the wait doubles
    assert backoff.fail("c", NOW) == NOW + timedelta(minutes=7)
    assert backoff.fail("c", NOW) == NOW + timedelta(minutes=14)
    for _ in range(10):
        last = backoff.fail("c", NOW)
    assert last == NOW + timedelta(hours=2)
    save_backoff(tmp_path, backoff)
    assert (tmp_path / "backoff.json").stat().st_mode & 0o777 == 0o600
    loaded = load_backoff(tmp_path)
    assert loaded.failures == {"c": 12} and loaded.until == backoff.until
    loaded.succeed("c")
    assert loaded.active(NOW) == {}


def test_lost_or_corrupt_state_is_harmless(tmp_path):
    assert load_backoff(tmp_path).until == {}
    (tmp_path / "backoff.json").write_text("{not json")
    assert load_backoff(tmp_path).until == {}
