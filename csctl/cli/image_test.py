"""``csctl image-test``: boot one VM of a type (or an image) and prove it serves jobs."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from csctl.cli.app import Application, json_option, pass_app

if TYPE_CHECKING:
    from csctl.console import Console
    from csctl.plan.imagetest import ImageTestReport, ImageTestResults, PhaseEvent

MARKS = {"passed": "ok", "failed": "FAILED", "skipped": "-", "pending": "", "active": "..."}
OK = {None: "", True: "ok", False: "MISMATCH"}

_timeout = functools.partial(click.option, type=click.FloatRange(min=0, min_open=True), show_default=True)


@click.command("image-test")
@click.option("--cloud", required=True, help="The configured cloud to boot on.")
@click.option("--type", "vm_types", multiple=True, help="VM type to test (repeat: tested in parallel).")
@click.option("--image", help="Image to test instead of a type's (needs --flavor; nothing is promised).")
@click.option("--flavor", help="Flavor or instance type for --image.")
@click.option("--probe-script", type=click.Path(path_type=Path), help="Site check run by the probe job.")
@_timeout("--boot-timeout", default=600, help="Seconds for the cloud to run the VM.")
@_timeout("--join-timeout", default=900, help="Seconds for the VM to join the pool.")
@_timeout("--job-timeout", default=600, help="Seconds for the probe job to match, and again to finish.")
@_timeout("--drain-timeout", default=300, help="Seconds to drain the VM, and again to terminate it.")
@click.option("--keep", is_flag=True, help="Leave the VM (and a failed probe job) for debugging.")
@json_option
@pass_app
def command(app: Application, cloud: str, vm_types: tuple[str, ...], keep: bool, **opts: Any) -> None:
    """Test an image before production: boot one VM with csctl's real contextualization
    and follow it: requested, running in the cloud, joined the pool, probe job matched,
    probe job finished, drained, terminated. The probe job runs on that VM only, as this
    process's HTCondor client identity, and reports cores, memory, disk, arch, OS and
    HTCondor version, compared with what the type promises.

    Exit status: 0 passed; 11-17 the phase that failed (10 + its number, in the order
    above); 18 every phase passed but the VM does not offer what its type promises;
    130 interrupted. On failure the VM's console is saved under STATE_DIR/console/
    and shown; the VM is always terminated, unless --keep.

    \b
    Examples:
      csctl image-test --cloud FGHotel --type pandacernvm --probe-script cvmfs-check.sh
      csctl --json image-test --cloud Hermes --image ami-00000043 --flavor c1.xlarge
    """
    from csctl.engine.imagetest import Timeouts, image_test

    timeouts = Timeouts(*(opts[f"{phase}_timeout"] for phase in ("boot", "join", "job", "drain")))
    with _progress(app.console) as progress:
        results = image_test(
            app.services, cloud, vm_types, opts["image"], opts["flavor"],
            probe_script=opts["probe_script"], timeouts=timeouts, keep=keep, progress=progress,
        )  # fmt: skip
    _render(app.console, results)
    if results.exit_code:
        raise click.exceptions.Exit(results.exit_code)


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[PhaseEvent], None]]:
    """Phases as they happen, on stderr: a live table on a terminal, else one line per change."""
    cells: dict[tuple[str, Any], tuple[str, float, float]] = {}  # (test, phase) -> state, since, seconds
    quiet = console.verbosity < 0
    live = console.err.is_terminal and not quiet

    def show(event: PhaseEvent) -> None:
        state = event.state.value
        cells[event.label, event.phase] = (state, time.monotonic(), event.seconds)
        if not live and not quiet:
            shown = "..." if state == "active" else f"{state} ({event.seconds:g} s)"
            detail = f": {event.detail}" if state == "failed" else ""
            console.err.print(f"{event.label}: {event.phase.label}: {shown}{detail}", markup=False)

    if not live:
        yield show
        return
    from rich.live import Live

    with Live(console=console.err, get_renderable=lambda: _table(cells), transient=True):
        yield show


def _table(cells: dict[tuple[str, Any], tuple[str, float, float]]) -> Any:
    from rich.table import Table

    from csctl.plan.imagetest import Phase

    table = Table("test", *(p.label for p in Phase), box=None)
    for label in dict.fromkeys(label for label, _ in list(cells)):  # a test's row from its first event
        row = [cells.get((label, p), ("pending", 0.0, 0.0)) for p in Phase]
        table.add_row(label, *(_cell(state, since, seconds) for state, since, seconds in row))
    return table


def _cell(state: str, since: float, seconds: float) -> str:
    if state == "active":
        return f"... {time.monotonic() - since:.0f}s"
    return f"{MARKS[state]} {seconds:.0f}s" if state in ("passed", "failed") else MARKS[state]


def _render(console: Console, results: ImageTestResults) -> None:
    if console.json_output:
        console.print_json(results.as_dict())
    else:
        phases = [(r.label, p.phase.label, MARKS[p.state.value], p.seconds, p.detail)
                  for r in results.reports for p in r.phases]  # fmt: skip
        console.table("image test", ["test", "phase", "result", "seconds", "detail"], phases)
        checks = [(r.label, c.resource, c.promised, c.advertised, c.detected, OK[c.ok], c.note)
                  for r in results.reports for c in r.checks]  # fmt: skip
        if checks:
            console.table("resources", ["test", "", "promised", "startd", "detected", "", "note"], checks)
    for r in results.reports:
        _outcome(console, r)


def _outcome(console: Console, r: ImageTestReport) -> None:
    if r.probe is not None and r.probe.site_output and (r.exit_code or not console.json_output):
        console.info(f"{r.label}: probe script output (exit {r.probe.site_exit}):\n{r.probe.site_output}")
    if r.console is not None:  # part of the error: shown even with --quiet
        console.err.print(f"{r.label}: console of {r.csctl_id} (saved to {r.console_path}):", markup=False)
        console.err.print(r.console, markup=False, highlight=False)
    for error in r.cleanup_errors:
        console.error(f"{r.label}: cleanup: {error}; the VM may be left behind")
    if r.kept:  # loud on purpose: shown even with --quiet, a VM left running costs money
        job = f" and probe job {r.job_id}" if r.job_id else ""
        console.err.print(f"warning: {r.label}: KEPT {r.csctl_id}{job} on cloud {r.cloud} (--keep): still "
                          "running; remove when done (the cloud's tools, condor_rm; csctl retire drains "
                          "an idle VM)", markup=False, style="bold yellow")  # fmt: skip
    failed = r.failed_phase
    if r.interrupted:
        console.error(f"{r.label}: interrupted (exit {r.exit_code})")
    elif failed is not None:
        console.error(f"{r.label}: FAILED at {failed.label}: {r.phase(failed).detail} (exit {r.exit_code})")
    elif r.exit_code:
        console.error(f"{r.label}: the VM does not offer what its type promises (exit {r.exit_code})")
    elif not console.json_output:
        console.result(f"{r.label}: PASSED")
