"""Ids and names read back from clouds and startds are untrusted: only csctl's grammar
goes on, everything else is set aside with a line that names where it came from."""

import pytest

from csctl.model import Instance, StartdSlot, VMState
from csctl.plan.identity import instance_problem, screen


def inst(csctl_id="hermes-0123abcd-0", cloud="Hermes", vm_type="pandacernvm", provider="i-1"):
    return Instance(csctl_id, cloud, vm_type, VMState.RUNNING, provider)


def slot(csctl_id, name="slot1@vm"):
    return StartdSlot(name, "vm", csctl_id, "t", "c", "Partitionable", "Unclaimed", "Idle", 1, 1, 1)


@pytest.mark.parametrize(
    "csctl_id",
    ["hermes-0123abcd-0", "local-deadbeef-12", "fg.hotel_2-0123abcd-999999", "a-b-0"],
)
def test_ids_csctl_gives_pass(csctl_id):
    assert instance_problem(inst(csctl_id)) is None


@pytest.mark.parametrize(
    "csctl_id",
    [
        "../../etc/cron.d/x-0",
        "hermes-0123abcd/../../x-0",
        "a..b-0",
        "-0",
        "hermes-0123abcd",  # no launch index
        "hermes-0123abcd-1234567",  # an index no cloud gives
        "hermes\n-0",
        "\x1b[31mred-0",
        "x" * 200 + "-0",
        "",
    ],
)
def test_ids_outside_the_grammar_are_refused(csctl_id):
    assert instance_problem(inst(csctl_id)).startswith("csctl id ")


@pytest.mark.parametrize("field", ["cloud", "vm_type"])
@pytest.mark.parametrize("value", ["../x", "a b", "\x1b[0m", ""])
def test_names_outside_the_grammar_are_refused(field, value):
    assert instance_problem(inst(**{field: value})) is not None


def test_screen_keeps_the_good_and_names_the_bad_by_where_they_came_from():
    good, bad = inst(), inst("../../tmp/pwn-0", provider="i-666")
    kept, slots, problems = screen([good, bad], [slot("hermes-0123abcd-0"), slot("x/../y-0", "slot1@evil")])
    assert kept == [good] and [s.csctl_id for s in slots] == ["hermes-0123abcd-0"]
    assert problems == [
        "instance 'i-666' skipped: csctl id '../../tmp/pwn-0' is not a csctl id",
        "startd 'slot1@evil' skipped: 'x/../y-0' is not a csctl id",
    ]


def test_a_huge_value_is_shown_cut():
    (problem,) = screen([inst("y" * 10_000, provider="p" * 10_000)], [])[2]
    assert len(problem) < 300
