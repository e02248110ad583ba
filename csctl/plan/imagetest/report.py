"""What an image test reports: its phases in order, the resource checks, the exit codes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from csctl.errors import ExitCode

SCHEMA = "csctl.imagetest/1"
MISMATCH_EXIT = 18  # every phase passed, but the VM does not offer what its type promises


class Phase(IntEnum):
    """The phases of an image test, in order; a failure exits with ``10 + phase``."""

    REQUESTED = 1
    RUNNING = 2
    JOINED = 3
    MATCHED = 4
    FINISHED = 5
    DRAINED = 6
    TERMINATED = 7

    @property
    def label(self) -> str:
        """How the phase reads in tables and messages."""
        return _LABELS[self]

    @property
    def exit_code(self) -> int:
        """The exit status of a test that failed in this phase."""
        return 10 + int(self)


_LABELS = {
    Phase.REQUESTED: "requested",
    Phase.RUNNING: "running in the cloud",
    Phase.JOINED: "joined the pool",
    Phase.MATCHED: "probe job matched",
    Phase.FINISHED: "probe job finished",
    Phase.DRAINED: "drained",
    Phase.TERMINATED: "terminated",
}


class PhaseState(StrEnum):
    """Where one phase of one test stands."""

    PENDING = "pending"
    ACTIVE = "active"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class PhaseResult:
    """One phase of one test; ``seconds`` once it ended."""

    phase: Phase
    state: PhaseState = PhaseState.PENDING
    seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class PhaseEvent:
    """A phase started (ACTIVE) or ended; what progress callbacks receive."""

    label: str
    phase: Phase
    state: PhaseState
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class Timeouts:
    """Seconds each waiting phase may take; ``drain`` covers draining and terminating."""

    boot: float = 600
    join: float = 900
    job: float = 600
    drain: float = 300


@dataclass(frozen=True)
class ImageTestSpec:
    """One VM to test: a configured VM type, or an image and flavor (``promised`` False)."""

    label: str
    cloud: str
    vm_type: str
    image: str
    flavor: str | None
    promised: bool = True


@dataclass
class Check:
    """One resource: what the type promises, what the startd advertises, what was detected."""

    resource: str
    promised: str | int | float | None
    advertised: str | int | float | None
    detected: str | int | float | None
    ok: bool | None  # None: nothing promised, nothing to judge
    note: str = ""


@dataclass
class Probe:
    """What the probe job reported: ``values`` (``ad.*`` from its machine ad, ``os.*``
    from the VM itself) and the site script's output and exit status, if one ran."""

    values: dict[str, str]
    exit_code: int | None
    site_output: str | None = None
    site_exit: int | None = None


@dataclass
class ImageTestReport:
    """The outcome of one image test."""

    label: str
    cloud: str
    vm_type: str
    image: str
    flavor: str | None
    phases: list[PhaseResult]
    csctl_id: str | None = None
    job_id: str | None = None
    probe: Probe | None = None
    checks: list[Check] = field(default_factory=list)
    console: str | None = None
    console_path: str | None = None
    kept: bool = False
    interrupted: bool = False
    cleanup_errors: list[str] = field(default_factory=list)
    schema: str = SCHEMA

    @classmethod
    def start(cls, spec: ImageTestSpec) -> ImageTestReport:
        """The report of a test of ``spec`` that has not begun: every phase pending."""
        phases = [PhaseResult(p) for p in Phase]
        return cls(spec.label, spec.cloud, spec.vm_type, spec.image, spec.flavor, phases)

    def phase(self, phase: Phase) -> PhaseResult:
        """The result of ``phase``."""
        return self.phases[int(phase) - 1]

    @property
    def failed_phase(self) -> Phase | None:
        """The phase that failed, if one did."""
        return next((p.phase for p in self.phases if p.state is PhaseState.FAILED), None)

    def skip_pending(self, kept: bool) -> None:
        """Mark the phases never reached as skipped; with ``kept`` (``--keep``) say why the
        VM was neither drained nor terminated."""
        for result in self.phases:
            if result.state is PhaseState.PENDING:
                result.state = PhaseState.SKIPPED
                result.detail = "kept (--keep)" if kept and result.phase >= Phase.DRAINED else ""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: phases by name (``joined``) with their label."""
        data = dataclasses.asdict(self)
        data["phases"] = [
            {
                **dataclasses.asdict(p),
                "phase": p.phase.name.lower(),
                "label": p.phase.label,
                "state": p.state.value,
            }
            for p in self.phases
        ]
        failed = self.failed_phase
        return {**data, "exit_code": self.exit_code, "failed_phase": failed.name.lower() if failed else None}

    @property
    def exit_code(self) -> int:
        """130 if interrupted, 10 + the failed phase, 18 on a resource mismatch, else 0."""
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        failed = self.failed_phase
        if failed is not None:
            return failed.exit_code
        return MISMATCH_EXIT if any(c.ok is False for c in self.checks) else 0


def overall_exit_code(reports: Sequence[ImageTestReport]) -> int:
    """Interrupted wins; otherwise the earliest failure of any test (lowest code), or 0."""
    codes = [r.exit_code for r in reports]
    if int(ExitCode.INTERRUPTED) in codes:
        return int(ExitCode.INTERRUPTED)
    return min((c for c in codes if c), default=0)


@dataclass
class ImageTestResults:
    """Every test of one ``csctl image-test``, in the order they were asked for."""

    reports: list[ImageTestReport]

    @property
    def exit_code(self) -> int:
        """The command's exit status (see overall_exit_code)."""
        return overall_exit_code(self.reports)

    def as_dict(self) -> dict[str, Any]:
        """What ``--json`` prints: the schema, the exit status and each test's report."""
        return {"schema": SCHEMA, "exit_code": self.exit_code, "results": [r.as_dict() for r in self.reports]}
