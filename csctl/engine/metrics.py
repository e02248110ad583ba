"""The cycle's numbers as a Prometheus textfile, for node_exporter's textfile collector."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from csctl.engine.state import write_atomically

if TYPE_CHECKING:
    from csctl.engine.cycle import CycleReport


def write_metrics(path: Path, report: CycleReport, now: datetime) -> None:
    """The cycle as a Prometheus textfile (node_exporter's textfile collector), atomically."""
    lines = [
        "# HELP csctl_idle_jobs Idle jobs in the pool at the last cycle.",
        "# TYPE csctl_idle_jobs gauge",
        f"csctl_idle_jobs {report.idle_jobs}",
        "# HELP csctl_unservable_jobs Idle jobs no configured VM type can serve.",
        "# TYPE csctl_unservable_jobs gauge",
        f"csctl_unservable_jobs {report.unservable_jobs}",
        "# HELP csctl_vms csctl VMs by cloud and status.",
        "# TYPE csctl_vms gauge",
    ]
    for cloud, per in sorted(report.vms.items()):
        lines += [f'csctl_vms{{cloud="{cloud}",status="{s}"}} {n}' for s, n in sorted(per.items())]
    for name, value, text in (
        ("booted", report.booted, "VMs booted by the last cycle."),
        ("drained", report.drained, "VMs drained by the last cycle."),
        ("terminated", report.terminated, "VMs terminated by the last cycle."),
        ("boot_failures", report.boot_failures, "Boot requests that failed in the last cycle."),
        ("errors", len(report.errors), "Errors (clouds, schedds) in the last cycle."),
        ("cycle_seconds", round(report.seconds, 3), "Wall time of the last cycle."),
        ("last_cycle_timestamp_seconds", int(now.timestamp()), "When the last cycle ran."),
    ):
        lines += [f"# HELP csctl_{name} {text}", f"# TYPE csctl_{name} gauge", f"csctl_{name} {value}"]
    write_atomically(path, ("\n".join(lines) + "\n").encode(), mode=0o644)
