"""The HTCondor pool as csctl sees it: idle jobs and csctl's startds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from csctl.core.demand import JobGroup
from csctl.core.supply import StartdSlot


@dataclass(frozen=True)
class DrainTarget:
    """A VM to drain: the address of its startd and a token it accepts (named by key)."""

    csctl_id: str
    address: str
    token: str
    key_name: str


@dataclass
class QueueSnapshot:
    """Idle jobs of every schedd that answered; ``errors`` names those that did not."""

    groups: list[JobGroup]
    schedds: list[str]
    errors: list[str] = field(default_factory=list)


class Pool(Protocol):
    """The pool: its idle jobs, csctl's slots, and draining csctl's VMs."""

    def idle_jobs(self) -> QueueSnapshot:
        """Idle jobs of the configured schedds (all known ones if none configured),
        grouped into autoclusters. Raises PoolUnreachable if no schedd can be read."""
        ...

    def csctl_slots(self) -> list[StartdSlot]:
        """Slot ads of every startd carrying this pool's csctl id, in one collector query."""
        ...

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """Drain each target gracefully; csctl id -> None if accepted, else the error."""
        ...
