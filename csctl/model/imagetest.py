"""What ``csctl image-test`` (csctl/engine/imagetest/) shares with its probe queue adapter
(csctl/pool/probes.py), and what it needs of the pool."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from csctl.model import DrainTarget, StartdSlot


@dataclass(frozen=True)
class ProbeJob:
    """A probe job ready to submit: its shell script, the site's own script to ship beside
    it (if any), and its submit commands without the file names the queue adds."""

    csctl_id: str
    script: str
    description: Mapping[str, str]
    site_script: bytes | None = None


@dataclass(frozen=True)
class ProbeStatus:
    """A probe job in the queue; ``code`` is JobStatus, None once it left the queue."""

    code: int | None
    exit_code: int | None = None
    hold_reason: str | None = None
    hold_code: int | None = None
    exit_signal: int | None = None


class ProbeQueue(Protocol):
    """Where probe jobs are submitted (a schedd, as the configured submitter)."""

    def submit(self, job: ProbeJob) -> str:
        """Submit ``job``; return its id (``cluster.proc``)."""
        ...

    def status(self, job_id: str) -> ProbeStatus:
        """The job's status now."""
        ...

    def output(self, job_id: str) -> str:
        """The completed job's standard output."""
        ...

    def remove(self, job_id: str) -> None:
        """Remove the job from the queue and forget its files."""
        ...

    def nudge(self) -> None:
        """Ask for a negotiation cycle soon."""
        ...


class DrainPool(Protocol):
    """What an image test needs of the pool (a part of ``Pool``)."""

    def csctl_slots(self) -> list[StartdSlot]:
        """Slot ads of the pool's csctl VMs."""
        ...

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """Drain gracefully; csctl id -> None when accepted, else the error."""
        ...
