"""Reading ``csctl demand --json`` back."""

import pytest

from csctl.plan.demand_file import demand_from_json


def test_the_demand_reader_ignores_fields_it_does_not_know():
    data = {
        "schema": "csctl.demand/1",
        "idle_jobs": 8,
        "vms_needed": 1,
        "from_the_future": {"x": 1},
        "rejected": [{"jobs": 1, "job_ids": ["1.0"], "owner": "a", "reasons": ["r"], "new": 2}],
        "requirements": [
            {"vm_type": "big", "clouds": ["A"], "vms_needed": 1, "need_by_owner": {"a": 1}, "zone": "z1"}
        ],
    }
    demand = demand_from_json(data)
    assert demand.requirements[0].need_by_owner == {"a": 1} and demand.rejected[0].jobs == 1
    with pytest.raises(ValueError, match="malformed demand"):
        demand_from_json({**data, "requirements": [{"clouds": ["A"]}]})
    with pytest.raises(ValueError, match="malformed demand"):
        demand_from_json({**data, "requirements": ["big"]})
