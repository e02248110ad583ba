"""``csctl demand``: the queue's idle jobs (or a ``condor_q -json`` file) into a Demand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from csctl.engine.judging import judge_apart
from csctl.engine.services import Services
from csctl.engine.snapshot import take_snapshot
from csctl.errors import InputError
from csctl.plan.demand import Demand, compute_demand
from csctl.plan.queue import JsonQueue, read_json_queue
from csctl.plan.supply import snapshot_demand
from csctl.pool.htcondor import load_classad_functions


@dataclass
class DemandResult:
    """The demand, and the schedds or clouds that could not be read (``partial``)."""

    demand: Demand
    errors: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.errors)


def read_job_file(path: Path) -> JsonQueue:
    """Idle jobs from a ``condor_q -json`` file, grouped as it is read (the file is never
    held whole, and each group's ad is built only as the groups are iterated);
    InputError for a file that cannot be read or is not a JSON array of job ads."""
    try:
        with path.open(encoding="utf-8") as stream:
            return read_json_queue(stream.read, source=str(path))
    except (OSError, ValueError, RecursionError) as exc:
        # RecursionError: arrays nested thousands deep, which json decodes recursively
        raise InputError(f"{path}: cannot read job snapshot: {exc}") from None


def demand(services: Services, from_file: Path | None = None) -> DemandResult:
    """What the idle jobs need, after the room csctl's VMs already offer. From a file,
    nothing is subtracted (the file says nothing of VMs) and neither pool nor clouds
    are asked."""
    config = services.config
    if from_file is not None:
        load_classad_functions()  # the pool's queries would have loaded them
        return DemandResult(compute_demand(read_job_file(from_file), [], config, judge_with=judge_apart))
    snapshot = take_snapshot(services.pool, services.clouds, config)
    result = snapshot_demand(snapshot, config, judge_with=judge_apart)
    result.warnings[:0] = snapshot.errors + snapshot.warnings
    return DemandResult(result, list(snapshot.errors))
