"""``csctl delegate-proxy --refresh-jobs``: the planner with plain ads, the apply step with an
in-memory schedd, and the whole command against the real HTCondor test pool."""

# ruff: noqa: F811  (pytest fixtures imported from tests.proxy.pki)

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from csctl.cli import cli
from csctl.errors import CsctlError, InputError
from csctl.proxy import IssueOptions, NewProxy, load_credential, make_proxy, proxy_file_bytes, write_private
from csctl.proxy.issuer import Issuer
from csctl.proxy.jobs import Outcome, parse_threshold, plan_refresh
from csctl.proxy.refresh import RefreshSettings, apply_refresh, refresh_jobs
from csctl.proxy.schedd import JobGone, pool_schedds
from tests.proxy.pki import Pki, alice, pki  # noqa: F401  (fixtures)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def ad(cluster: int, hours_left: float | None, owner: str = "alice", status: int = 1) -> dict[str, Any]:
    job: dict[str, Any] = {
        "ClusterId": cluster, "ProcId": 0, "Owner": owner, "JobStatus": status,
        "x509userproxy": "x509up", "SUBMIT_x509userproxy": "/home/alice/x509up",
    }  # fmt: skip
    if hours_left is not None:
        job["x509UserProxyExpiration"] = int((NOW + timedelta(hours=hours_left)).timestamp())
    return job


# --------------------------------------------------------------------------- the plan


def test_plan_picks_the_owners_idle_and_running_jobs_expiring_within_the_threshold() -> None:
    ads = [
        ad(1, 1), ad(2, 5, status=2), ad(3, 7), ad(4, 1, owner="bob"), ad(5, 1, status=5),
        ad(6, None), {**ad(7, 1), "x509userproxy": None},
    ]  # fmt: skip
    plan = plan_refresh({"s": ads}, "alice", NOW, timedelta(hours=6))
    assert [j.cluster for j in plan.due] == [6, 1, 2]  # unknown expiry first, then soonest
    assert [j.cluster for j in plan.fresh] == [3]
    assert plan.due[2].status == "running"
    assert plan.deadline == NOW + timedelta(hours=6)


@pytest.mark.parametrize(
    ("text", "hours"), [("6h", 6), ("90m", 1.5), ("1d", 24), ("1h30m", 1.5), ("3600s", 1), ("2:30", 2.5)]
)
def test_threshold(text: str, hours: float) -> None:
    assert parse_threshold(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["", "6", "h", "6 h", "-1h", "1w", "6h!"])
def test_bad_threshold(text: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_threshold(text)
    assert raised.value.message == f"--threshold: expected a duration such as 6h, 90m or 1d, got {text!r}"


def test_settings_default_to_the_invoking_user_and_six_hours(tmp_path: Path) -> None:
    issuer = Issuer(tmp_path / "c", tmp_path / "k", IssueOptions(), lambda: b"", None)
    settings = RefreshSettings.resolve(issuer)
    assert settings == RefreshSettings(issuer, pwd.getpwuid(os.getuid()).pw_name, timedelta(hours=6))
    assert (settings.bits, settings.out, settings.dry_run) == (2048, None, False)
    given = RefreshSettings.resolve(
        issuer, owner="bob", threshold="1h30m", bits=4096, out=tmp_path / "p", dry_run=True
    )
    assert given == RefreshSettings(issuer, "bob", timedelta(minutes=90), 4096, tmp_path / "p", True)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ({"owner": "bob smith"}, "--owner: not a user name: 'bob smith'"),
        ({"threshold": "6 h"}, "--threshold: expected a duration such as 6h, 90m or 1d, got '6 h'"),
    ],
)
def test_settings_refuse_bad_words(tmp_path: Path, words: dict[str, str], message: str) -> None:
    issuer = Issuer(tmp_path / "c", tmp_path / "k", IssueOptions(), lambda: b"", None)
    with pytest.raises(InputError) as raised:
        RefreshSettings.resolve(issuer, **words)  # type: ignore[arg-type]
    assert raised.value.message == message


# --------------------------------------------------------------------------- apply, in memory


@dataclass
class MemorySchedd:
    """A schedd that remembers what it was sent; refuses or loses jobs on request."""

    ads: list[dict[str, Any]]
    name: str = "mem"
    refuse: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)
    received: dict[int, bytes] = field(default_factory=dict)
    modes: list[int] = field(default_factory=list)

    def proxy_jobs(self, owner: str) -> list[Mapping[str, Any]]:
        return self.ads

    def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
        self.modes.append(stat.S_IMODE(proxy_file.stat().st_mode))
        if cluster in self.gone:
            raise JobGone(f"job {cluster}.{proc} left the queue")
        if cluster in self.refuse:
            raise CsctlError("schedd mem refused: no")
        self.received[cluster] = proxy_file.read_bytes()


@pytest.fixture
def make(pki: Pki, alice: tuple[Path, Path]) -> Any:
    calls: list[NewProxy] = []

    def maker() -> NewProxy:
        calls.append(make_proxy(load_credential(*alice), IssueOptions(lifetime=timedelta(hours=12))))
        return calls[-1]

    maker.calls = calls  # type: ignore[attr-defined]
    return maker


def test_one_proxy_for_all_jobs_and_a_failure_does_not_stop_the_others(make: Any, tmp_path: Path) -> None:
    schedd = MemorySchedd([ad(1, 1), ad(2, 1), ad(3, 1), ad(4, 1)], refuse={2}, gone={3})
    report = refresh_jobs([schedd], owner="alice", now=NOW, threshold=timedelta(hours=6), make=make)
    assert [(r.job.cluster, r.outcome) for r in report.results] == [
        (1, Outcome.REFRESHED), (2, Outcome.FAILED), (3, Outcome.GONE), (4, Outcome.REFRESHED),
    ]  # fmt: skip
    assert len(make.calls) == 1
    assert schedd.received[1] == schedd.received[4]
    assert schedd.modes == [0o600] * 4
    assert report.results[1].error == "schedd mem refused: no"
    assert report.partial
    assert report.proxy_expires == make.calls[0].cert.not_valid_after_utc


def test_a_job_gone_is_reported_but_not_partial(make: Any) -> None:
    schedd = MemorySchedd([ad(1, 1)], gone={1})
    report = refresh_jobs([schedd], owner="alice", now=NOW, threshold=timedelta(hours=6), make=make)
    assert report.results[0].outcome is Outcome.GONE
    assert report.results[0].error == "job 1.0 left the queue"
    assert not report.partial


def test_dry_run_and_nothing_due_make_no_proxy(make: Any) -> None:
    schedd = MemorySchedd([ad(1, 1), ad(2, 9)])
    six = timedelta(hours=6)
    dry = refresh_jobs([schedd], owner="alice", now=NOW, threshold=six, make=make, dry_run=True)
    assert [(r.job.cluster, r.outcome) for r in dry.results] == [(1, Outcome.PLANNED)]
    idle = refresh_jobs([schedd], owner="alice", now=NOW, threshold=timedelta(hours=1), make=make)
    assert idle.results == []
    assert make.calls == [] and schedd.received == {}


def test_out_keeps_the_proxy_else_it_is_removed(make: Any, tmp_path: Path) -> None:
    plan = plan_refresh({"mem": [ad(1, 1)]}, "alice", NOW, timedelta(hours=6))
    apply_refresh(plan, [MemorySchedd([])], make, tmp_path / "kept")
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o600
    seen: list[Path] = []

    class Spy(MemorySchedd):
        def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
            seen.append(proxy_file)

    apply_refresh(plan, [Spy([])], make)
    assert seen and not seen[0].exists() and not seen[0].parent.exists()


def test_unspooled_job_failure_says_why(make: Any) -> None:
    schedd = MemorySchedd([{**ad(1, 1), "SUBMIT_x509userproxy": None}], refuse={1})
    report = refresh_jobs([schedd], owner="alice", now=NOW, threshold=timedelta(hours=6), make=make)
    assert report.results[0].error == (
        "schedd mem refused: no; its proxy is not in the schedd's spool (submitted without spooling), "
        "and the schedd refreshes only spooled proxies: renew its x509userproxy file in place"
    )


def test_refresh_options_need_refresh_jobs(tmp_path: Path) -> None:
    env = {"NO_COLOR": "1", "HOME": str(tmp_path)}
    result = CliRunner().invoke(cli, ["delegate-proxy", "--dry-run"], env=env)
    assert result.exit_code == 2
    assert result.stderr == "error: --owner, --threshold and --dry-run go with --refresh-jobs\n"


# --------------------------------------------------------------------------- the real pool

OTHER = "daemon"  # an account of the pool's chroot that is not csctl-user


@pytest.fixture
def proxy_pool(clean_queue: Any) -> Iterator[Any]:
    """The pool, with the bindings told not to delegate proxies (see docs/proxy.md) and
    any job of OTHER removed afterwards (csctl-user cannot remove it)."""
    import htcondor2

    old = htcondor2.param.get("DELEGATE_JOB_GSI_CREDENTIALS")
    htcondor2.param["DELEGATE_JOB_GSI_CREDENTIALS"] = "false"
    yield clean_queue
    from testbed import pool

    pool.in_root(clean_queue.paths, "condor_rm", OTHER, check=False)
    if old is None:
        del htcondor2.param["DELEGATE_JOB_GSI_CREDENTIALS"]
    else:
        htcondor2.param["DELEGATE_JOB_GSI_CREDENTIALS"] = str(old)


def _proxy_file(path: Path, cert: tuple[Path, Path], hours: float) -> Path:
    made = make_proxy(load_credential(*cert), IssueOptions(lifetime=timedelta(hours=hours)))
    write_private(path, proxy_file_bytes(made.chain, made.key))
    return path


def _submit_spooled(condor: Any, proxy: Path, count: int) -> int:
    """Submit as csctl-user with the proxy spooled (remote-submit style); wait until idle."""
    import htcondor2

    description = {
        "executable": "/bin/sleep", "arguments": "600", "initialdir": str(proxy.parent),
        "x509userproxy": str(proxy), "should_transfer_files": "YES", "transfer_executable": "false",
    }  # fmt: skip
    schedd = condor.schedd()
    result = schedd.submit(htcondor2.Submit(description), count=count, spool=True)
    schedd.spool(result)
    deadline = time.monotonic() + 20
    constraint = f"ClusterId == {result.cluster()}"
    while any(a["JobStatus"] != 1 for a in schedd.query(constraint, ["JobStatus"])):
        assert time.monotonic() < deadline, [dict(a) for a in schedd.query(constraint)]
        time.sleep(0.2)
    return int(result.cluster())


def _submit_as_other(condor: Any, cert: tuple[Path, Path]) -> int:
    """A job of OTHER, submitted inside the pool's chroot (FS authentication)."""
    from testbed import pool

    work = condor.paths.host("/tmp/csctl-refresh-other")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    _proxy_file(work / "proxy.pem", cert, 1)
    (work / "job.sub").write_text(
        "executable = /bin/sleep\narguments = 600\nx509userproxy = /tmp/csctl-refresh-other/proxy.pem\n"
        "should_transfer_files = NO\nqueue\n"
    )
    uid = int(pool.in_root(condor.paths, "id", "-u", OTHER).stdout)
    for path in (work, work / "proxy.pem"):
        os.chown(path, uid, uid)
    done = pool.in_root(condor.paths, "runuser", "-u", OTHER, "--", "condor_submit", "-terse",
                        "/tmp/csctl-refresh-other/job.sub")  # fmt: skip
    return int(done.stdout.split(".")[0])


def _expiries(condor: Any, cluster: int) -> dict[str, Any]:
    ads = condor.schedd().query(f"ClusterId == {cluster}", ["ProcId", "JobStatus", "x509UserProxyExpiration"])
    return {f"{cluster}.{a['ProcId']}": {"JobStatus": a["JobStatus"], "exp": a["x509UserProxyExpiration"]}
            for a in ads}  # fmt: skip


def _config(condor: Any, tmp_path: Path) -> Path:
    path = tmp_path / "csctl.toml"
    path.write_text(
        f'[pool]\nname = "{condor.pool_name}"\ncollector = "{condor.collector}"\n'
        'condor_params = { DELEGATE_JOB_GSI_CREDENTIALS = "false" }\n'
    )
    return path


@pytest.mark.pool
def test_refresh_jobs_against_the_pool(proxy_pool: Any, pki: Pki, tmp_path: Path) -> None:
    condor = proxy_pool
    cert = pki.user("Rita")
    short = _submit_spooled(condor, _proxy_file(tmp_path / "short.pem", cert, 1), 2)
    long = _submit_spooled(condor, _proxy_file(tmp_path / "long.pem", cert, 24), 1)
    other = _submit_as_other(condor, cert)
    before = {c: _expiries(condor, c) for c in (short, long, other)}

    def csctl(*args: str) -> Any:
        argv = ["--config", str(_config(condor, tmp_path)), "delegate-proxy", "--refresh-jobs", "--json",
                "--owner", condor.user, "--threshold", "2h", "--cert", str(cert[0]), "--key", str(cert[1]),
                "--cert-dir", str(pki.cert_dir), *args]  # fmt: skip
        result = CliRunner().invoke(cli, argv, env={"NO_COLOR": "1", "HOME": str(tmp_path)})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result.exit_code, json.loads(result.stdout)

    code, dry = csctl("--dry-run")
    assert code == 0
    assert sorted(j["id"] for j in dry["jobs"]) == [f"{short}.0", f"{short}.1"]
    assert {j["result"] for j in dry["jobs"]} == {"would refresh"}
    assert dry["left_alone"] == 1 and dry["proxy_expires"] is None
    assert {c: _expiries(condor, c) for c in (short, long, other)} == before

    code, done = csctl()
    assert code == 0, done
    assert sorted((j["id"], j["result"]) for j in done["jobs"]) == [
        (f"{short}.0", "refreshed"), (f"{short}.1", "refreshed"),
    ]  # fmt: skip
    new_end = int(datetime.fromisoformat(done["proxy_expires"]).timestamp())
    assert new_end > time.time() + 11 * 3600
    assert {j: v["exp"] for j, v in _expiries(condor, short).items()} == {
        f"{short}.0": new_end, f"{short}.1": new_end,
    }  # fmt: skip
    assert _expiries(condor, long) == before[long]
    assert _expiries(condor, other) == before[other]


@pytest.mark.pool
def test_a_job_that_vanished_is_reported_not_fatal(proxy_pool: Any, pki: Pki, tmp_path: Path) -> None:
    import htcondor2

    from csctl.config import parse_config
    from csctl.pool.htcondor import HTCondorPool

    condor = proxy_pool
    cert = pki.user("Vic")
    cluster = _submit_spooled(condor, _proxy_file(tmp_path / "short.pem", cert, 1), 2)
    config = parse_config(_config(condor, tmp_path).read_text())

    def make_after_removing_one() -> NewProxy:
        # runs between the query and the refreshes: job .0 leaves the queue meanwhile
        condor.schedd().act(htcondor2.JobAction.Remove, f"{cluster}.0")
        return make_proxy(load_credential(*cert), IssueOptions())

    report = refresh_jobs(
        pool_schedds(HTCondorPool(config.pool)), owner=condor.user, now=datetime.now(UTC),
        threshold=timedelta(hours=2), make=make_after_removing_one,
    )  # fmt: skip
    outcomes = {r.job.id: (r.outcome, r.error) for r in report.results}
    assert outcomes[f"{cluster}.1"] == (Outcome.REFRESHED, None)
    outcome, error = outcomes[f"{cluster}.0"]
    assert outcome is Outcome.GONE
    assert error in (
        f"job {cluster}.0 left the queue",
        f"job {cluster}.0 is no longer idle or running (JobStatus 3)",
    )
    assert not report.partial
