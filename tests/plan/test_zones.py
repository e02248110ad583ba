"""Zones out of capacity (plan/zones.py), what each boot failure calls for
(plan/backoff.after_failure), and image URLs resolved to registered images (plan/images.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csctl.plan.backoff import after_failure
from csctl.plan.demand import Demand, Rejected, VMRequirement
from csctl.plan.images import LOOKUP_FAILED, image_urls, is_image_url, resolve_images
from csctl.plan.zones import UNAVAILABLE_FOR, UnavailableZones, sanitized_zones, zones_to_try

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "http://repo.example.org/images/cernvm.hdd"


def test_a_cloud_without_zones_is_asked_once_without_one() -> None:
    assert zones_to_try("c", (), {}, NOW) == (None,)


def test_a_zone_out_of_capacity_is_skipped_until_its_time_is_up() -> None:
    cache = UnavailableZones()
    assert cache.mark("c", "b", NOW) == NOW + UNAVAILABLE_FOR
    assert zones_to_try("c", ("a", "b", "c"), cache.active(NOW), NOW) == ("a", "c")
    assert zones_to_try("other", ("a", "b"), cache.active(NOW), NOW) == ("a", "b")  # per cloud
    later = NOW + UNAVAILABLE_FOR
    assert zones_to_try("c", ("a", "b", "c"), cache.active(later), later) == ("a", "b", "c")


def test_every_zone_skipped_leaves_nothing_to_try() -> None:
    cache = UnavailableZones()
    for zone in ("a", "b"):
        cache.mark("c", zone, NOW)
    assert zones_to_try("c", ("a", "b"), cache.active(NOW), NOW) == ()


def test_zones_read_back_are_clamped_and_expired_ones_dropped() -> None:
    cache, problems = sanitized_zones(
        {
            "c/a": NOW + timedelta(days=3),
            "c/b": NOW - timedelta(seconds=1),
            "c/c": NOW + timedelta(minutes=1),
        },
        NOW,
    )
    assert cache.until == {"c/a": NOW + UNAVAILABLE_FOR, "c/c": NOW + timedelta(minutes=1)}
    assert problems == [
        f"skip of zone 'c/a' until {(NOW + timedelta(days=3)).isoformat()} clamped to 0:07:00"
    ]


@pytest.mark.parametrize(
    ("kind", "halve", "next_zone", "back_off"),
    [
        ("capacity", True, True, True),
        ("quota", True, False, True),
        ("throttled", False, False, True),
        ("price", False, False, False),
        ("auth", False, False, True),
        ("backend", False, False, True),
    ],
)
def test_what_each_failure_calls_for(kind: str, halve: bool, next_zone: bool, back_off: bool) -> None:
    response = after_failure(kind)
    assert (response.halve, response.next_zone, response.back_off) == (halve, next_zone, back_off)


@pytest.mark.parametrize(
    ("image", "url"),
    [(URL, True), ("https://x/y.img", True), ("ami-0abc1234", False), ("cernvm-4", False), ("a://", False)],
)
def test_image_urls_are_told_from_names(image: str, url: bool) -> None:
    assert is_image_url(image) is url


def requirement(clouds: list[str], images: dict[str, str], jobs: int = 4) -> VMRequirement:
    return VMRequirement("t", clouds, idle_jobs=jobs, vms_needed=2, images=images, owners=["alice"])


def test_only_urls_on_the_requirements_clouds_are_looked_up() -> None:
    demand = Demand([requirement(["a", "b"], {"a": URL, "b": "ami-1", "c": URL})], [], 4)
    assert image_urls(demand) == {("a", URL)}


def test_clouds_without_the_image_leave_the_requirement() -> None:
    demand = Demand([requirement(["a", "b", "c"], {"a": URL, "b": URL, "c": "named"})], [], 4)
    resolved, warnings = resolve_images(demand, {("a", URL): None, ("b", URL): "img-b"})
    assert [(r.clouds, r.images) for r in resolved.requirements] == [
        (["b", "c"], {"b": "img-b", "c": "named"})
    ]
    assert (resolved.rejected, warnings) == ([], [])


def test_a_url_no_cloud_has_rejects_the_jobs_and_keeps_earlier_rejections() -> None:
    earlier = Rejected(1, ["1.0"], "bob", ["VMMem: expected a number"])
    demand = Demand([requirement(["a", "b"], {"a": URL, "b": URL})], [earlier], 5)
    resolved, warnings = resolve_images(demand, {("a", URL): None, ("b", URL): None})
    assert resolved.requirements == [] and warnings == []
    assert resolved.rejected[0] == earlier
    (reason,) = resolved.rejected[1].reasons
    assert resolved.rejected[1].jobs == 4
    assert reason.startswith(f"VMLoc: no image registered for {URL} on cloud(s) a, b: upload it there")
    assert resolved.idle_jobs == 5


def test_jobs_wait_when_a_cloud_could_not_be_asked() -> None:
    demand = Demand([requirement(["a", "b"], {"a": URL, "b": URL})], [], 4)
    resolved, warnings = resolve_images(demand, {("a", URL): LOOKUP_FAILED, ("b", URL): None})
    assert (resolved.requirements, resolved.rejected) == ([], [])
    assert warnings == ["4 job(s) wait: their VMLoc image cannot be looked up on a"]
