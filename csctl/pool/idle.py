"""The idle-jobs query every snapshot sends each schedd, and the same query sent ahead of
the configuration's validation (``query_ahead``, for ``csctl demand``).

The schedd groups the idle jobs itself (QueryOpt.GroupBy: one ad per distinct combination
of the projected attributes, with JobCount and JobIds), so 100,000 jobs cost a few dozen ads.
"""

from __future__ import annotations

from typing import Any

from csctl.model import JobGroup
from csctl.plan import attributes as A
from csctl.plan.jobs import SIGNIFICANT_ATTRS
from csctl.plan.queue import IDLE, SAMPLE_IDS
from csctl.pool.child import LocatedQuery, query_located
from csctl.pool.settings import PoolAddress, operator_multiplier, timeout_multiplier

IDLE_PROJECTION = [*SIGNIFICANT_ATTRS, "JobStatus", A.CSCTL_IMAGE_TEST]
# not image-test probes
IDLE_CONSTRAINT = f"JobStatus == {IDLE} && {A.CSCTL_IMAGE_TEST} =?= undefined"
GROUP_BY = "GroupBy"  # the QueryOpt


def groups(ads: list[Any], schedd: str) -> list[JobGroup] | None:
    """The schedd's grouped answer as job groups; None when it answered with job ads (a
    schedd that ignores GroupBy), which the caller groups itself."""
    if not ads or not all("JobCount" in ad for ad in ads):
        return None
    return [JobGroup(ad, int(ad["JobCount"]), _sample_ids(ad.get("JobIds")), schedd) for ad in ads]


def query_ahead(address: PoolAddress) -> LocatedQuery:
    """The idle-jobs query, sent now to the pool's one schedd by a child process that locates
    it itself (csctl/pool/child.py ``query_located``): this process needs neither htcondor2
    nor the validated configuration for it. It waits as long as HTCondorPool's queries do."""
    multiplier = operator_multiplier(address.condor_params) or str(timeout_multiplier(address.timeout))
    return query_located(
        address.collector,
        address.schedds,
        IDLE_CONSTRAINT,
        IDLE_PROJECTION,
        GROUP_BY,
        address.condor_params,
        multiplier,
    )


def _sample_ids(job_ids: Any) -> list[str]:
    """``"135.0 ... 135.4"`` (the schedd's summary of a group's jobs) -> ids, at most five."""
    if not isinstance(job_ids, str):
        return []
    return [token for token in job_ids.split() if token != "..."][:SAMPLE_IDS]
