"""csctl's shared vocabulary: VM ids and what a slot ad says about its VM."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from csctl.model import StartdSlot, batch_of, vm_id

SLOT = StartdSlot(
    name="slot1@a",
    machine="a",
    csctl_id="a",
    vm_type="t",
    cloud="A",
    slot_type="Partitionable",
    state="Unclaimed",
    activity="Idle",
    cpus=4,
    memory=8000,
    disk_kb=1000,
)


def test_vm_id_and_batch_of():
    assert vm_id("fg-0123abcd", 0) == "fg-0123abcd-0"
    assert batch_of("fg-0123abcd-12") == "fg-0123abcd"
    assert batch_of(vm_id("my-cloud-0123abcd", 3)) == "my-cloud-0123abcd"


@given(
    batch=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}-[0-9a-f]{8}", fullmatch=True),
    index=st.integers(0, 10_000),
)
def test_a_batch_is_recovered_from_any_of_its_vm_ids(batch, index):
    assert batch_of(vm_id(batch, index)) == batch
    assert vm_id(batch, index) != vm_id(batch, index + 1)


def slot(**changes) -> StartdSlot:
    return dataclasses.replace(SLOT, **changes)


def test_in_use_counts_claims_and_dynamic_slots_not_yet_seen():
    assert not slot().in_use
    assert slot(state="Claimed", slot_type="Static").in_use
    assert slot(dynamic_slots=1).in_use  # a claim whose dynamic slot ad has not arrived
    assert slot(state="Claimed", slot_type="Dynamic").in_use


def test_free_means_it_can_still_take_a_job():
    assert slot().free
    assert slot(state="Claimed", dynamic_slots=3).free  # a partitionable slot keeps its leftover
    assert slot(slot_type="Static").free
    assert not slot(slot_type="Static", state="Claimed").free
    assert not slot(slot_type="Dynamic", state="Claimed").free
    assert not slot(draining=True).free
    assert not slot(image_test="img-1").free  # an image under test admits only its probe
