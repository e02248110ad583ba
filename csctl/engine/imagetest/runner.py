"""One image test, acted out: boot the VM, follow it phase by phase, always clean up."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from csctl.config import Config
from csctl.context.tokens import SigningKey, batch_secrets
from csctl.engine.boot import boot_request, new_batch_id
from csctl.engine.imagetest.probe import probe_job
from csctl.engine.retire import drain_target
from csctl.engine.state import state_lock, write_atomically
from csctl.errors import CsctlError
from csctl.model import Cloud, Instance, StartdSlot, VMState, vm_id
from csctl.model.imagetest import DrainPool, ProbeQueue, ProbeStatus
from csctl.plan import imagetest as plan
from csctl.plan.imagetest import (
    ImageTestReport,
    ImageTestSpec,
    Phase,
    PhaseEvent,
    PhaseResult,
    PhaseState,
    Timeouts,
)
from csctl.plan.placement import BootItem
from csctl.plan.reconcile import Status, VMView

log = logging.getLogger(__name__)
TAG_IMAGE_TEST = "csctl-image-test"
CONSOLE_LINES = 60
# a cron cycle holds the state lock for seconds; wait that long, not a whole test
LOCK_WAIT_SECONDS = 120
T = TypeVar("T")
DEFAULT_TIMEOUTS = Timeouts()


class _Failed(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Interrupted(Exception):
    pass


class _Runner:
    """One image test. ``run`` never raises for a failed phase, and always cleans up."""

    def __init__(
        self,
        spec: ImageTestSpec,
        config: Config,
        cloud: Cloud,
        pool: DrainPool,
        probes: ProbeQueue,
        pool_key: SigningKey,
        *,
        timeouts: Timeouts,
        keep: bool,
        site_script: bytes | None,
        progress: Callable[[PhaseEvent], None],
        clock: Callable[[], float],
        sleep: Callable[[float], Any],
        now: Callable[[], datetime],
        stop: threading.Event,
        poll: float,
    ) -> None:
        self.spec, self.config, self.cloud, self.pool, self.probes = spec, config, cloud, pool, probes
        self.pool_key, self.timeouts, self.keep, self.site_script = pool_key, timeouts, keep, site_script
        self.progress, self.clock, self.sleep, self.now, self.stop = progress, clock, sleep, now, stop
        self.poll = poll
        self.report = ImageTestReport.start(spec)
        self.instance: Instance | None = None
        self.terminated = False
        self.secrets: list[str] = []

    def run(self) -> ImageTestReport:
        try:
            self._request()
            self._running()
            self._joined()
            self._matched()
            self._finished()
            if self.keep:
                self.report.kept = True
            else:
                self._drained()
                self._terminated()
        except _Failed:
            pass
        except (_Interrupted, KeyboardInterrupt):
            self.report.interrupted = True
        finally:
            self._cleanup()
        return self.report

    # -- helpers --------------------------------------------------------------------------
    @contextmanager
    def _phase(self, phase: Phase) -> Iterator[PhaseResult]:
        result = self.report.phase(phase)
        result.state, started = PhaseState.ACTIVE, self.clock()
        self._emit(result, 0.0)
        try:
            yield result
            result.state = PhaseState.PASSED
        except _Failed as exc:
            result.state, result.detail = PhaseState.FAILED, exc.detail
            raise
        except CsctlError as exc:  # a cloud or the pool failed us: this phase failed
            result.state, result.detail = PhaseState.FAILED, exc.message
            raise _Failed(exc.message) from None
        except (_Interrupted, KeyboardInterrupt):
            result.state, result.detail = PhaseState.FAILED, "interrupted"
            raise
        except Exception as exc:  # a bug or an untranslated SDK error: fail, clean up, tell
            log.warning("image test %s: %s failed unexpectedly", self.spec.label, phase.label, exc_info=True)
            result.state, result.detail = PhaseState.FAILED, f"unexpected error: {exc}"
            raise _Failed(result.detail) from None
        finally:
            result.seconds = round(self.clock() - started, 1)
            self._emit(result, result.seconds)

    def _emit(self, result: PhaseResult, seconds: float) -> None:
        self.progress(PhaseEvent(self.spec.label, result.phase, result.state, seconds, result.detail))

    def _wait(self, timeout: float, check: Callable[[], T | None], what: str) -> T:
        deadline = self.clock() + timeout
        while True:
            if self.stop.is_set():
                raise _Interrupted()
            found = check()
            if found is not None:
                return found
            if self.clock() >= deadline:
                raise _Failed(f"timed out after {timeout:g} s {what}")
            self.sleep(self.poll)

    def _listed(self) -> Instance | None:
        found = [i for i in self.cloud.list_instances(self.config.pool.name) if i.csctl_id == self.csctl_id]
        return found[0] if found and found[0].state is not VMState.DELETED else None

    def _slots(self) -> list[StartdSlot]:
        return [s for s in self.pool.csctl_slots() if s.csctl_id == self.csctl_id]

    @property
    def csctl_id(self) -> str:
        assert self.report.csctl_id is not None
        return self.report.csctl_id

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """The state lock, held only while this test boots or terminates its own VM (never
        for the whole test, so cron cycles go on); a running cycle is waited for."""
        return state_lock(self.config.state_dir, "image-test", wait_seconds=LOCK_WAIT_SECONDS)

    # -- the phases -----------------------------------------------------------------------
    def _request(self) -> None:
        with self._phase(Phase.REQUESTED):
            batch = new_batch_id(self.spec.cloud)
            self.report.csctl_id = vm_id(batch, 0)
            config = plan.probe_config(self.config, self.spec, self.csctl_id)
            # the VM's own key, as the payload carries it: never shown in a console or output
            self.secrets = batch_secrets(self.pool_key, batch)
            item = BootItem(self.spec.cloud, self.spec.vm_type, 1, self.spec.image, self.spec.flavor)
            request = boot_request(config, self.cloud, item, self.pool_key, self.now(), batch, 1)
            request = dataclasses.replace(request, tags={**request.tags, TAG_IMAGE_TEST: self.csctl_id})
            with self._locked():
                started = self.cloud.boot(request)
            if not started:
                raise _Failed("the cloud started no VM")
            self.instance = started[0]
            self.report.csctl_id = self.instance.csctl_id

    def _running(self) -> None:
        def started() -> Instance | None:
            inst = self._listed()
            if inst is None:
                raise _Failed("the cloud no longer lists the VM")
            if inst.state is VMState.ERROR:
                raise _Failed(f"the cloud says the VM failed: {inst.fault or 'no reason given'}")
            # stopped: the cloud started it and the guest stopped; the join will tell why
            return inst if inst.state in (VMState.RUNNING, VMState.STOPPED) else None

        with self._phase(Phase.RUNNING):
            self.instance = self._wait(self.timeouts.boot, started, "for the cloud to start the VM")

    def _joined(self) -> None:
        def joined() -> list[StartdSlot] | None:
            slots = self._slots()
            if slots:
                return slots
            inst = self._listed()
            if inst is None or inst.state in (VMState.STOPPED, VMState.ERROR):
                state = inst.state.value if inst else "gone"
                raise _Failed(f"the VM is {state} and never joined (its contextualization failed?)")
            return None

        with self._phase(Phase.JOINED):
            self._wait(self.timeouts.join, joined, "for the VM's startd to join the pool")

    def _job_state(self, done: Callable[[ProbeStatus], bool]) -> Callable[[], ProbeStatus | None]:
        def check() -> ProbeStatus | None:
            assert self.report.job_id is not None
            status = self.probes.status(self.report.job_id)
            trouble = plan.probe_trouble(status)
            if trouble is not None:
                raise _Failed(trouble)
            if done(status):
                return status
            self.probes.nudge()
            return None

        return check

    def _matched(self) -> None:
        with self._phase(Phase.MATCHED):
            lifetime = int(self.timeouts.job) + 300
            self.report.job_id = self.probes.submit(probe_job(self.csctl_id, self.site_script, lifetime))
            self.probes.nudge()
            check = self._job_state(plan.probe_started)
            self._wait(self.timeouts.job, check, "for the probe job to start on the VM")

    def _finished(self) -> None:
        with self._phase(Phase.FINISHED):
            status = self._wait(
                self.timeouts.job, self._job_state(plan.probe_done), "for the probe job to finish"
            )
            assert self.report.job_id is not None
            text = plan.redact(self.probes.output(self.report.job_id), self.secrets)
            self.probes.remove(self.report.job_id)
            self.report.job_id = None
            probe = plan.parse_probe(text, status.exit_code)
            self.report.probe = probe
            vm_type = self.config.vm_types.get(self.spec.vm_type) if self.spec.promised else None
            self.report.checks = plan.compare(vm_type, probe)
            failure = plan.probe_failure(status, probe, self.csctl_id)
            if failure is not None:
                raise _Failed(failure)

    def _drained(self) -> None:
        def drained() -> bool | None:
            return True if plan.drained(self._slots()) else None

        with self._phase(Phase.DRAINED):
            assert self.instance is not None
            view = VMView(
                self.csctl_id, self.spec.cloud, self.spec.vm_type, Status.IDLE, self.instance, self._slots()
            )
            target = drain_target(view, self.config, self.pool_key, self.now())
            if target is None:
                raise _Failed("the pool shows no startd address to drain")
            error = self.pool.drain([target], reason="csctl image-test").get(self.csctl_id)
            if error:
                raise _Failed(error)
            self._wait(self.timeouts.drain, drained, "for the VM to drain")

    def _terminated(self) -> None:
        def gone() -> bool | None:
            return True if self._listed() is None else None

        with self._phase(Phase.TERMINATED):
            assert self.instance is not None
            with self._locked():
                accepted = self.cloud.terminate([self.instance])
            if self.csctl_id not in accepted:
                raise _Failed("the cloud did not accept the termination")
            self.terminated = True
            self._wait(self.timeouts.drain, gone, "for the cloud to delete the VM")

    # -- always ---------------------------------------------------------------------------
    def _cleanup(self) -> None:
        report = self.report
        report.skip_pending(self.keep)
        failed = report.interrupted or report.failed_phase is not None
        if self.instance is None and report.csctl_id is not None:
            # the boot call failed or was interrupted: a VM it half-started may still be listed
            try:
                self.instance = self._listed()
            except CsctlError as exc:
                if report.interrupted:  # else the boot failed cleanly: the cloud started nothing
                    report.cleanup_errors.append(f"{report.csctl_id}: cannot look for it: {exc.message}")
        if failed and self.instance is not None:
            self._save_console(self.instance)
        if self.keep:
            report.kept = self.instance is not None
            return
        if report.job_id is not None:
            try:
                self.probes.remove(report.job_id)
                report.job_id = None
            except CsctlError as exc:
                report.cleanup_errors.append(f"probe job {report.job_id}: {exc.message}")
        if self.instance is not None and not self.terminated:
            try:
                if self.csctl_id not in self.cloud.terminate([self.instance]):
                    report.cleanup_errors.append(f"{self.csctl_id}: the cloud did not accept the termination")
            except CsctlError as exc:
                report.cleanup_errors.append(f"{self.csctl_id}: {exc.message}")

    def _save_console(self, instance: Instance) -> None:
        try:
            text = self.cloud.console_output(instance)
        except CsctlError as exc:
            text = f"(console unavailable: {exc.message})"
        text = plan.redact(text, self.secrets)
        failed = self.report.failed_phase
        header = f"csctl image-test: {instance.csctl_id} on {instance.cloud}: " + (
            f"failed at {failed.label}" if failed else "interrupted"
        )
        path = self.config.state_dir / "console" / f"{instance.csctl_id}-{self.now():%Y%m%dT%H%M%SZ}.log"
        try:
            write_atomically(path, f"{header}\n{text}\n".encode(), mode=0o600)
            self.report.console_path = str(path)
        except OSError as exc:
            self.report.cleanup_errors.append(f"cannot save the console to {path}: {exc.strerror}")
        self.report.console = "\n".join(text.splitlines()[-CONSOLE_LINES:])


def run_image_test(
    spec: ImageTestSpec,
    config: Config,
    cloud: Cloud,
    pool: DrainPool,
    probes: ProbeQueue,
    pool_key: SigningKey,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    keep: bool = False,
    site_script: bytes | None = None,
    progress: Callable[[PhaseEvent], None] = lambda event: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: threading.Event | None = None,
    poll: float = 2.0,
) -> ImageTestReport:
    """Boot one VM for ``spec``, follow it through every phase, and report.

    Each waiting phase has its own timeout; the first failure ends the test. On any
    failure (also a timeout, KeyboardInterrupt or ``stop`` being set) the VM's console is
    saved under STATE_DIR/console/ and in the report, secrets redacted. The VM and the
    probe job are always removed, unless ``keep``: then both are left and ``kept`` is set.
    """
    stop = stop or threading.Event()
    runner = _Runner(
        spec,
        config,
        cloud,
        pool,
        probes,
        pool_key,
        timeouts=timeouts,
        keep=keep,
        site_script=site_script,
        progress=progress,
        clock=clock,
        sleep=sleep or stop.wait,
        now=now,
        stop=stop,
        poll=poll,
    )
    return runner.run()
