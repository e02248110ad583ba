"""The pure half of refreshing proxies: reading job ads, owner names, the dry-run report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csctl.errors import InputError
from csctl.proxy.jobs import Outcome, check_owner, dry_run_report, plan_refresh, proxy_job

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def ad(cluster: int, **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "ClusterId": cluster, "ProcId": 3, "Owner": "alice", "JobStatus": 2, "x509userproxy": "x509up",
        "x509UserProxyExpiration": int((NOW + timedelta(hours=1)).timestamp()),
        "SUBMIT_x509userproxy": "/home/alice/x509up",
    }  # fmt: skip
    return {**job, **extra}


def test_proxy_job_reads_the_ad() -> None:
    job = proxy_job("s1", ad(7))
    assert job is not None
    assert (job.schedd, job.id, job.owner, job.status, job.proxy) == (
        "s1",
        "7.3",
        "alice",
        "running",
        "x509up",
    )
    assert job.expires == NOW + timedelta(hours=1)
    assert job.spooled


@pytest.mark.parametrize(
    ("extra", "expires", "spooled"),
    [
        ({"x509UserProxyExpiration": True}, None, True),  # a bool is no timestamp
        ({"x509UserProxyExpiration": "soon"}, None, True),
        ({"SUBMIT_x509userproxy": None}, NOW + timedelta(hours=1), False),
    ],
)
def test_proxy_job_unknown_expiry_and_unspooled(
    extra: dict[str, Any], expires: datetime | None, spooled: bool
) -> None:
    job = proxy_job("s1", ad(7, **extra))
    assert job is not None and (job.expires, job.spooled) == (expires, spooled)


@pytest.mark.parametrize("extra", [{"JobStatus": 5}, {"x509userproxy": ""}, {"x509userproxy": None}])
def test_proxy_job_skips_held_jobs_and_jobs_without_proxy(extra: dict[str, Any]) -> None:
    assert proxy_job("s1", ad(7, **extra)) is None


@pytest.mark.parametrize("owner", ["alice", "csctl-user", "a.b", "_svc", "x$"])
def test_owner_names_accepted(owner: str) -> None:
    assert check_owner(owner) == owner


@pytest.mark.parametrize("owner", ["", "-alice", 'a" || true', "a b", "ali/ce"])
def test_owner_names_refused(owner: str) -> None:
    with pytest.raises(InputError) as raised:
        check_owner(owner)
    assert raised.value.message == f"--owner: not a user name: {owner!r}"


def test_dry_run_report_plans_every_due_job_and_says_which_cannot_be_refreshed() -> None:
    ads = [ad(1), ad(2, SUBMIT_x509userproxy=None), ad(3, x509UserProxyExpiration=0)]
    plan = plan_refresh({"s1": ads}, "alice", NOW, timedelta(hours=6))
    report = dry_run_report(plan)
    assert report.dry_run and report.proxy_expires is None and report.plan is plan
    assert [(r.job.cluster, r.outcome) for r in report.results] == [
        (3, Outcome.PLANNED), (1, Outcome.PLANNED), (2, Outcome.PLANNED),
    ]  # fmt: skip
    assert [r.error for r in report.results] == [
        None,
        None,
        "its proxy is not in the schedd's spool (submitted without spooling), and the schedd "
        "refreshes only spooled proxies: renew its x509userproxy file in place",
    ]
    assert not report.partial


def test_dry_run_report_is_partial_when_a_schedd_was_not_asked() -> None:
    plan = plan_refresh({"s1": [ad(1)]}, "alice", NOW, timedelta(hours=6))
    plan.errors.append("schedd s2: down")
    assert dry_run_report(plan).partial
