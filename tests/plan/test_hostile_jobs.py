"""One user's odd job never stops demand for the pool: each case below once crashed or
raised out of compute_demand; now the job is served or rejected with a reason, and a
good job beside it is served."""

from __future__ import annotations

import classad2
import pytest

from csctl.model import JobGroup
from csctl.plan import guard
from csctl.plan.demand import Demand, compute_demand
from csctl.plan.queue import groups_from_json
from tests.conftest import EXAMPLE_CONFIG

GOOD = {"ClusterId": 9, "ProcId": 0, "JobStatus": 1, "Owner": "good", "RequestCpus": 1}
BLACKLIST = " && ".join(f'Machine != "wn{i}.example.org"' for i in range(400))


@pytest.fixture(scope="module")
def config():
    from csctl.config import load_config

    return load_config(EXAMPLE_CONFIG)


def odd(**attrs) -> dict:
    return {"ClusterId": 1, "ProcId": 0, "JobStatus": 1, "Owner": "odd", **attrs}


def demand_of(config, *jobs: dict) -> Demand:
    demand = compute_demand(groups_from_json([*jobs, GOOD], "q"), [], config)
    served = sum(r.idle_jobs for r in demand.requirements)
    assert served + sum(r.jobs for r in demand.rejected) == demand.idle_jobs == len(jobs) + 1
    assert "good" in {o for r in demand.requirements for o in r.owners}
    return demand


def reasons(demand: Demand) -> list[str]:
    return [reason for r in demand.rejected for reason in r.reasons]


def test_a_long_machine_blacklist_is_evaluated_and_served(config):
    demand = demand_of(config, odd(Requirements=f"/Expr({BLACKLIST})/"))
    assert demand.rejected == []
    assert demand.requirements[0].idle_jobs == 2


def test_a_blacklist_that_excludes_every_vm_is_false_not_an_error(config):
    requirements = f'{BLACKLIST} && TARGET.Arch == "SPARC"'
    demand = demand_of(config, odd(Requirements=f"/Expr({requirements})/"))
    assert reasons(demand) == ["Requirements is false on VM type pandacernvm"]


def test_a_long_blacklist_from_a_schedd_ad_is_served_too(config):
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0, "Owner": "odd"})
    ad["Requirements"] = classad2.ExprTree(BLACKLIST)
    demand = compute_demand([JobGroup(ad, 3, ["1.0"])], [], config)
    assert (demand.requirements[0].idle_jobs, demand.rejected) == (3, [])


def test_attributes_referring_to_each_other_in_a_circle(config):
    jobs = odd(
        RequestMemory="/Expr(RequestDisk + 1)/",
        RequestDisk="/Expr(RequestMemory + 1)/",
    )
    assert reasons(demand_of(config, jobs)) == [
        "RequestMemory: refers to itself through other attributes (a circle)"
    ]


def test_a_circle_outside_the_projection_from_a_schedd_ad(config):
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0, "Owner": "odd"})
    ad["A"] = classad2.ExprTree("B + 1")
    ad["B"] = classad2.ExprTree("A + 1")
    ad["RequestCpus"] = classad2.ExprTree("A")
    ad["Requirements"] = classad2.ExprTree("TARGET.Cpus >= RequestCpus")
    demand = compute_demand([JobGroup(ad, 1, ["1.0"])], [], config)
    assert [r.reasons for r in demand.rejected] == [
        ["RequestCpus: refers to itself through other attributes (a circle)"]
    ]


def test_a_circle_through_requirements_names_it(config):
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0, "Owner": "odd"})
    ad["Requirements"] = classad2.ExprTree("TARGET.Cpus >= A")
    ad["A"] = classad2.ExprTree("B + 1")
    ad["B"] = classad2.ExprTree("A + 1")
    (rejected,) = compute_demand([JobGroup(ad, 1, ["1.0"])], [], config).rejected
    assert rejected.reasons == [
        "Requirements is false on VM type pandacernvm "
        "(it refers to attributes that refer to each other in a circle)"
    ]


@pytest.mark.parametrize("attribute", ["Owner", "VMType", "Requirements", "VMAMI"])
def test_a_lone_surrogate_is_rejected_before_the_library_sees_it(config, attribute):
    value = '/Expr("a\ud800")/' if attribute == "Requirements" else "a\ud800"
    demand = demand_of(config, odd(**{attribute: value}))
    assert reasons(demand) == [f"{attribute}: contains a lone UTF-16 surrogate"]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits(config, value):
    demand = demand_of(config, odd(RequestCpus=value))
    assert reasons(demand) == [f"RequestCpus: integer {str(value)[:30]} is out of the 64-bit range"]


def test_the_largest_64_bit_integer_is_read(config):
    demand = demand_of(config, odd(VMKeepAlive=2**63 - 1))
    assert demand.rejected == []


def test_a_very_large_expression_is_rejected_unparsed(config):
    huge = "1" + " + 1" * 200_000
    demand = demand_of(config, odd(RequestMemory=f"/Expr({huge})/"))
    assert reasons(demand) == ["RequestMemory: expression of 800,001 characters is over the 200,000 budget"]


def test_a_deep_expression_that_is_not_a_conjunction_is_rejected(config):
    deep = " || ".join(f'Machine == "wn{i}"' for i in range(2000))
    demand = demand_of(config, odd(Requirements=f"/Expr({deep})/"))
    (reason,) = reasons(demand)
    assert reason.startswith("Requirements: expression nested about 3999 levels deep is over the 250 budget")


def test_a_deep_expression_from_a_schedd_ad_is_rejected_before_evaluation(config):
    ad = classad2.ClassAd({"ClusterId": 1, "ProcId": 0, "Owner": "odd"})
    ad["RequestMemory"] = classad2.ExprTree("1" + " + 1" * 2000)
    (rejected,) = compute_demand([JobGroup(ad, 1, ["1.0"])], [], config).rejected
    assert rejected.reasons[0].startswith("RequestMemory: expression nested about")


def test_a_nul_character_is_rejected(config):
    demand = demand_of(config, odd(VMType="big\x00"))
    assert reasons(demand) == ["VMType: contains a NUL character"]


def test_non_finite_numbers_are_rejected(config):
    demand = demand_of(config, odd(VMMem=float("nan")), odd(ProcId=1, VMMem=float("inf")))
    assert sorted(reasons(demand)) == [
        "VMMem: inf is not a finite number",
        "VMMem: nan is not a finite number",
    ]


def test_an_expression_cannot_reach_into_its_neighbours(config):
    demand = demand_of(config, odd(RequestCpus="/Expr(1; Requirements = false)/"))
    assert reasons(demand) == ["RequestCpus: expression does not parse"]


def test_raw_values_in_reasons_and_owner_are_escaped_and_cut(config):
    owner = "\x1b[31mred\x1b[0m\nfake line" + "x" * 10_000
    demand = demand_of(config, odd(Owner=owner, VMType="\x1b[2Jclear" + "y" * 1000))
    (rejected,) = demand.rejected
    assert rejected.owner.startswith("\\e[31mred\\e[0m\\nfake line") and len(rejected.owner) == 200
    (reason,) = rejected.reasons
    assert reason.startswith('VMType "\\e[2Jclear') and "\x1b" not in reason and len(reason) < 300


def test_the_same_odd_jobs_are_grouped_not_evaluated_each(config):
    jobs = [odd(ProcId=p, RequestCpus=2**64) for p in range(1000)]
    demand = demand_of(config, *jobs)
    assert [(r.jobs, len(r.job_ids)) for r in demand.rejected] == [(1000, 5)]


def test_budgets_leave_room_below_what_the_library_survives():
    # measured: the evaluator gives up near 400 levels, the unparser crashes near 50,000
    assert guard.MAX_DEPTH < 400 and guard.MAX_CLAUSES * 5 < 30_000
