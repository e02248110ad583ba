"""The pool through the htcondor bindings (``htcondor2``, present in every htcondor >= 23.10)."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from csctl.errors import PoolUnreachable
from csctl.model import DrainTarget, JobGroup, JobHistory, QueueSnapshot, StartdSlot
from csctl.plan import attributes as A
from csctl.plan.jobs import PROJECTION
from csctl.plan.queue import group_ads
from csctl.pool.child import CollectorFailed, LocatedQuery, ScheddFailed, query_apart
from csctl.pool.history import collect, read_history
from csctl.pool.idle import GROUP_BY, IDLE_CONSTRAINT, IDLE_PROJECTION, groups
from csctl.pool.settings import (
    TIMEOUT_KNOB,
    TOKENS_IN_USE,
    PoolAddress,
    operator_multiplier,
    param_set,
    timeout_multiplier,
    token_directory,
)
from csctl.pool.slots import SLOT_PROJECTION, slot

log = logging.getLogger(__name__)

# Schedds queried at once by idle_jobs; a pool with more waits for a free thread
MAX_SCHEDD_QUERIES = 8
# how long a lookup of the schedds' locations serves (the queries of one snapshot)
LOCATION_SECONDS = 5.0
RUNNING = 2
# the machine's CsctlId, copied into the job ad at match time (SYSTEM_JOB_MACHINE_ATTRS)
RUNNING_ON = f"MachineAttr{A.CSCTL_ID}0"


def bindings() -> Any:
    """Import htcondor2 lazily (it reads its configuration at import)."""
    with warnings.catch_warnings():
        # a host without a local condor_config is normal for csctl: it names the collector
        warnings.filterwarnings("ignore", message=".*condor_config.*")
        import htcondor2
    return htcondor2


def load_classad_functions() -> None:
    """Make HTCondor's own ClassAd functions (``split``, ``versionGE``, ...) known to the
    ClassAd library. The htcondor2 library registers them when it loads; classad2 alone
    knows only the language's built-ins, and condor_submit >= 25 writes
    ``versionGE(split(TARGET.CondorVersion)[1], ...)`` into every job's Requirements, so
    without them a job read from a file would be judged ERROR, not matched."""
    bindings()


class HTCondorPool:
    """Queries one pool's collector and schedds."""

    def __init__(self, config: PoolAddress) -> None:
        self.config = config
        self.htcondor = bindings()
        for key, value in config.condor_params.items():
            self.htcondor.param[key] = value
        # drains keep HTCondor's own wait (or the operator's): each waits on a VM in turn
        self._drain_multiplier = operator_multiplier(config.condor_params)
        if self._drain_multiplier is None:
            self.htcondor.param[TIMEOUT_KNOB] = str(timeout_multiplier(config.timeout))
        self.collector = self.htcondor.Collector(config.collector)
        self._located: tuple[float, list[Any]] | None = None
        self._locating = threading.Lock()
        self._begun: tuple[Future[QueueSnapshot], ThreadPoolExecutor] | None = None
        self._ahead: LocatedQuery | None = None

    def schedd_ads(self) -> list[Any]:
        """Location ads of the configured schedds (every schedd the collector knows if none).

        One snapshot asks for its idle and its running jobs at once: the second asker waits
        for the first one's lookup and shares it, so a cycle locates the schedds once."""
        with self._locating:
            now = time.monotonic()
            if self._located is None or now - self._located[0] > LOCATION_SECONDS:
                self._located = (now, self._locate())
            return list(self._located[1])

    def _locate(self) -> list[Any]:
        daemon = self.htcondor.DaemonType.Schedd
        try:
            if not self.config.schedds:
                return list(self.collector.locateAll(daemon))
            found = [(name, self.collector.locate(daemon, name)) for name in self.config.schedds]
        except self.htcondor.HTCondorException as exc:
            raise self._unreachable(str(exc)) from None
        unknown = [name for name, ad in found if ad is None]
        if unknown:
            raise PoolUnreachable(
                f"collector {self.config.collector} knows no schedd named {', '.join(unknown)}",
                hint="check pool.schedds (condor_status -schedd lists the names)",
            )
        return [ad for _, ad in found]

    def _unreachable(self, message: str) -> PoolUnreachable:
        return PoolUnreachable(
            f"cannot query collector {self.config.collector}: {message}",
            hint="check pool.collector and that csctl may read from the pool",
        )

    def begin_idle_jobs(self) -> None:
        """Start reading the idle jobs now, in a thread of its own: the next ``idle_jobs``
        call returns that answer (or raises its error). For a command sure to ask for them
        (``csctl demand``), so that the schedds work while it imports and builds the rest.
        Nothing to do when a query sent ahead was adopted."""
        if self._ahead is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="csctl-idle-jobs")
            self._begun = executor.submit(self._idle_jobs), executor

    def adopt_idle_jobs(self, query: LocatedQuery) -> None:
        """Take the idle-jobs query sent ahead to this pool (csctl/pool/idle.py
        ``query_ahead``): the next ``idle_jobs`` call reads its answer, or asks as usual
        when it brought none."""
        self._ahead = query

    def idle_jobs(self) -> QueueSnapshot:
        """Idle jobs of every schedd, grouped; a schedd that fails is named in ``errors``.

        The schedds are asked at once (each in a child process, as the bindings hold the
        GIL for a whole query: see ``_overlaps``), so this takes as long as the slowest
        schedd; results keep the collector's order. After ``begin_idle_jobs``, the answer
        of the read it began.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is not None and (found := self._answered(ahead)) is not None:
            return found
        begun, self._begun = self._begun, None
        if begun is None:
            return self._idle_jobs()
        try:
            return begun[0].result()
        finally:  # its thread has ended on return: a large queue may be judged in forked parts
            begun[1].shutdown(wait=True)

    def _answered(self, ahead: LocatedQuery) -> QueueSnapshot | None:
        """The queue from a query sent ahead, which located the pool's one schedd: that
        location serves this snapshot's other queries too. None when it brought no answer
        or job ads (a schedd that ignores GroupBy): asked again, the usual way. Its errors
        are the ones asking would raise."""
        try:
            answer = ahead.result()
        except CollectorFailed as exc:
            raise self._unreachable(exc.message) from None
        except ScheddFailed as exc:
            raise PoolUnreachable(f"schedd {exc.location.get('Name', '?')}: {exc.message}") from None
        if answer is None:
            return None
        location, ads = answer
        name = str(location.get("Name", "?"))
        found = groups(ads, name) if ads else []
        if found is None:
            return None
        with self._locating:
            self._located = (time.monotonic(), [location])
        return QueueSnapshot(groups=found, schedds=[name])

    def _idle_jobs(self) -> QueueSnapshot:
        schedd_ads = self.schedd_ads()
        if not schedd_ads:
            raise PoolUnreachable(f"collector {self.config.collector} knows no schedd")
        snapshot = QueueSnapshot(groups=[], schedds=[])
        workers = min(MAX_SCHEDD_QUERIES, len(schedd_ads))
        apart = _overlaps(len(schedd_ads))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csctl-schedd") as executor:
            answers = list(executor.map(lambda ad: self._one_schedd(ad, apart), schedd_ads))
        for name, answer in answers:
            if isinstance(answer, str):
                snapshot.errors.append(f"schedd {name}: {answer}")
            else:
                snapshot.groups.extend(answer)
                snapshot.schedds.append(name)
        if not snapshot.schedds:
            raise PoolUnreachable("; ".join(snapshot.errors))
        return snapshot

    def _one_schedd(self, ad: Any, apart: bool) -> tuple[str, list[JobGroup] | str]:
        """The schedd's name and its idle jobs, or its error message."""
        name = str(ad.get("Name", "?"))
        try:
            return name, self._grouped(ad, name, apart)
        except self.htcondor.HTCondorException as exc:
            log.debug("schedd %s failed", name, exc_info=True)
            return name, str(exc)

    def _grouped(self, location: Any, name: str, apart: bool) -> list[JobGroup]:
        """The schedd's idle jobs as autoclusters over csctl's significant attributes,
        grouped by the schedd (csctl/pool/idle.py); ``apart``: in a child process (see
        ``_overlaps``). A schedd that ignores the option answers with job ads, grouped here.
        """
        opts = int(self.htcondor.QueryOpt[GROUP_BY])
        found = groups(self._query(location, IDLE_CONSTRAINT, IDLE_PROJECTION, opts, apart), name)
        if found is not None:
            return found
        # every job ad: parsed where it is grouped, not sent through a pipe as text
        return group_ads(self.htcondor.Schedd(location).query(IDLE_CONSTRAINT, list(PROJECTION)), schedd=name)

    def _query(
        self, location: Any, constraint: str, projection: list[str], opts: int, apart: bool
    ) -> list[Any]:
        """One schedd query, in this process or (``apart``) in a child process."""
        if apart:
            return query_apart(
                self.htcondor, location, constraint, projection, opts, self.config.condor_params
            )
        return list(self.htcondor.Schedd(location).query(constraint, projection, opts=opts))

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        """csctl id -> the jobs (``schedd#cluster.proc``) the schedds run on that VM, from
        the job ads' ``MachineAttrCsctlId0`` (the schedds' SYSTEM_JOB_MACHINE_ATTRS must
        name CsctlId): the schedd keeps it while the job runs, also when the collector has
        forgotten the VM's ads. Schedds that fail are named in the second list."""
        found: dict[str, list[str]] = {}
        errors: list[str] = []
        schedd_ads = self.schedd_ads()
        workers = max(1, min(MAX_SCHEDD_QUERIES, len(schedd_ads)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csctl-running") as executor:
            answers = list(executor.map(self._running_on, schedd_ads))
        for name, answer in answers:
            if isinstance(answer, str):
                errors.append(f"schedd {name}: running jobs: {answer}")
                continue
            for ad in answer:
                job = f"{name}#{ad.get('ClusterId', '?')}.{ad.get('ProcId', '?')}"
                found.setdefault(str(ad[RUNNING_ON]), []).append(job)
        return found, errors

    def _running_on(self, ad: Any) -> tuple[str, list[Any] | str]:
        # Read in this process, never apart: this answer keeps VMs whose jobs run from being
        # terminated, and with it read in a child process two fault scenarios (the schedd
        # restarted, the collector killed; tests/pool/test_faults.py) terminated a VM whose
        # job ran. Until that is understood, it is read as it always was.
        name = str(ad.get("Name", "?"))
        constraint = f"JobStatus == {RUNNING} && {RUNNING_ON} =!= undefined"
        try:
            return name, list(self.htcondor.Schedd(ad).query(constraint, ["ClusterId", "ProcId", RUNNING_ON]))
        except self.htcondor.HTCondorException as exc:
            return name, str(exc)

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        """Jobs that ran on csctl VMs and left each schedd's queue after its mark (the
        newest job a previous read returned), newest first: one projected history query
        per schedd, schedds asked at once (see csctl/pool/history.py)."""
        schedd_ads = self.schedd_ads()
        workers = max(1, min(MAX_SCHEDD_QUERIES, len(schedd_ads)))
        apart = self.config.condor_params if _overlaps(len(schedd_ads)) else None
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csctl-history") as executor:
            answers = executor.map(lambda ad: read_history(self.htcondor, ad, marks, apart), schedd_ads)
            return collect(answers, marks)

    def user_priorities(self) -> dict[str, float]:
        """Accountant record ``Name`` -> effective priority, the numbers ``condor_userprio``
        shows, in one query of the pool's negotiator (for ``fair_share = "htcondor"``)."""
        try:
            negotiator = self.htcondor.Negotiator(self.collector.locate(self.htcondor.DaemonType.Negotiator))
            records = negotiator.getPriorities()
        except self.htcondor.HTCondorException as exc:
            raise PoolUnreachable(f"cannot read user priorities from the negotiator: {exc}") from None
        found: dict[str, float] = {}
        for record in records:
            name, priority = record.get("Name"), record.get("Priority")
            if isinstance(name, str) and isinstance(priority, int | float):
                found[name] = float(priority)
        return found

    def csctl_slots(self) -> list[StartdSlot]:
        """Slot ads of this pool's csctl VMs."""
        constraint = f'{A.CSCTL_POOL} == "{self.config.name}" && {A.CSCTL_ID} =!= undefined'
        try:
            ads = self.collector.query(self.htcondor.AdType.Startd, constraint, SLOT_PROJECTION)
        except self.htcondor.HTCondorException as exc:
            raise self._unreachable(str(exc)) from None
        return [slot(ad) for ad in ads]

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """Drain each target gracefully (running jobs finish; no new ones start).

        Returns csctl id -> None when the startd accepted, else the error message.
        """
        import classad2

        htcondor = self.htcondor
        results: dict[str, str | None] = {}
        if not targets:
            return results
        tokens = {t.key_name: t.token for t in targets}
        with (
            TOKENS_IN_USE,
            token_directory(htcondor, tokens),
            param_set(htcondor, TIMEOUT_KNOB, self._drain_multiplier),
        ):
            for target in targets:
                location = classad2.ClassAd({"MyAddress": target.address, "MyType": "Startd"})
                try:
                    htcondor.Startd(location).drainJobs(
                        htcondor.DrainType.Graceful, htcondor.CompletionType.Nothing, reason=reason
                    )
                    results[target.csctl_id] = None
                except htcondor.HTCondorException as exc:
                    log.debug("drain of %s failed", target.csctl_id, exc_info=True)
                    results[target.csctl_id] = f"drain refused or unreachable: {exc}"
        return results

    def advertise(self, ads: Sequence[Mapping[str, Any]]) -> None:
        """Put ``ads`` in the collector with UPDATE_AD_GENERIC (the collector's ALLOW_DAEMON,
        or ALLOW_ADVERTISE_* of the type, must admit csctl's identity)."""
        import classad2

        try:
            self.collector.advertise([classad2.ClassAd(dict(ad)) for ad in ads], "UPDATE_AD_GENERIC")
        except self.htcondor.HTCondorException as exc:
            raise PoolUnreachable(f"collector {self.config.collector} refused the ads: {exc}") from None

    def invalidate(self, ad_type: str, names: Sequence[str]) -> None:
        """Withdraw ads of ``ad_type`` by name with INVALIDATE_ADS_GENERIC."""
        import classad2

        wanted = " || ".join(f"Name == {classad2.quote(name)}" for name in names)
        query = classad2.ClassAd({"MyType": "Query", "TargetType": ad_type})
        query["Requirements"] = classad2.ExprTree(wanted or "false")
        try:
            self.collector.advertise([query], "INVALIDATE_ADS_GENERIC")
        except self.htcondor.HTCondorException as exc:
            raise PoolUnreachable(f"collector {self.config.collector} refused to withdraw: {exc}") from None


def _overlaps(schedds: int) -> bool:
    """Whether a schedd query must leave this process's GIL free: it is one of several
    asked at once, or it is asked from a worker thread (a snapshot lists the clouds at the
    same time). The main thread's lone query runs in-process, where a child's start-up
    would only add to it."""
    return schedds > 1 or threading.current_thread() is not threading.main_thread()
