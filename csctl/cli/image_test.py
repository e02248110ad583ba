"""``csctl image-test``: boot one VM of a type (or an image) and prove it serves jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import InputError

SECONDS = click.FloatRange(min=0, min_open=True)
MARKS = {"passed": "ok", "failed": "FAILED", "skipped": "-", "pending": "", "active": "..."}

F = TypeVar("F", bound=Callable[..., Any])


def _timeout(name: str, default: int, text: str) -> Callable[[F], F]:
    return click.option(name, type=SECONDS, default=default, show_default=True, help=text)


@click.command("image-test")
@click.option("--cloud", required=True, help="The configured cloud to boot on.")
@click.option("--type", "vm_types", multiple=True, help="VM type to test (repeat: tested in parallel).")
@click.option("--image", help="Image to test instead of a type's (needs --flavor; nothing is promised).")
@click.option("--flavor", help="Flavor or instance type for --image.")
@click.option("--probe-script", type=click.Path(path_type=Path), help="Site check run by the probe job.")
@_timeout("--boot-timeout", 600, "Seconds for the cloud to run the VM.")
@_timeout("--join-timeout", 900, "Seconds for the VM to join the pool.")
@_timeout("--job-timeout", 600, "Seconds for the probe job to match, and again to finish.")
@_timeout("--drain-timeout", 300, "Seconds to drain the VM, and again to terminate it.")
@click.option("--keep", is_flag=True, help="Leave the VM (and a failed probe job) for debugging.")
@json_option
@pass_app
def command(app: Application, vm_types: tuple[str, ...], probe_script: Path | None, **opts: Any) -> None:
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
    from csctl.engine import imagetest as it

    config = app.config
    specs = it.image_test_specs(config, opts["cloud"], vm_types, opts["image"], opts["flavor"])
    site_script = None
    if probe_script is not None:
        try:
            site_script = probe_script.read_bytes()
        except OSError as exc:
            raise InputError(f"{probe_script}: cannot read probe script: {exc.strerror}") from None
    key = app.signing_key("boot VMs")
    timeouts = it.Timeouts(
        opts["boot_timeout"], opts["join_timeout"], opts["job_timeout"], opts["drain_timeout"]
    )
    clouds = {opts["cloud"]: app.clouds()[opts["cloud"]]}
    from csctl.pool.probes import ScheddProbeQueue

    pool = app.pool()
    probes = ScheddProbeQueue(pool)
    with _Progress(app, [s.label for s in specs]) as progress:
        reports = it.run_image_tests(
            specs, config, clouds, pool, probes, key, timeouts=timeouts, keep=opts["keep"],
            site_script=site_script, progress=progress,
        )  # fmt: skip
    _render(app, reports)
    code = it.overall_exit_code(reports)
    if code:
        raise click.exceptions.Exit(code)


class _Progress:
    """Phases as they happen, on stderr: a live table on a terminal, else one line per change."""

    def __init__(self, app: Application, labels: list[str]) -> None:
        self.err, self.quiet = app.console.err, app.console.verbosity < 0
        self.cells: dict[str, dict[Any, tuple[str, float, float]]] = {label: {} for label in labels}
        self.live: Any = None

    def __enter__(self) -> _Progress:
        if self.err.is_terminal and not self.quiet:
            from rich.live import Live

            self.live = Live(console=self.err, get_renderable=self._table, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, event: Any) -> None:
        state = event.state.value
        self.cells[event.label] = {
            **self.cells[event.label],
            event.phase: (state, time.monotonic(), event.seconds),
        }
        if self.live is None and not self.quiet:
            shown = "..." if state == "active" else f"{state} ({event.seconds:g} s)"
            detail = f": {event.detail}" if state == "failed" else ""
            self.err.print(f"{event.label}: {event.phase.label}: {shown}{detail}", markup=False)

    def _table(self) -> Any:
        from rich.table import Table

        from csctl.engine.imagetest import Phase

        table = Table("test", *(p.label for p in Phase), box=None)
        for label, phases in list(self.cells.items()):
            row = [phases.get(p, ("pending", 0.0, 0.0)) for p in Phase]
            table.add_row(label, *(_cell(state, since, seconds) for state, since, seconds in row))
        return table


def _cell(state: str, since: float, seconds: float) -> str:
    if state == "active":
        return f"... {time.monotonic() - since:.0f}s"
    return f"{MARKS[state]} {seconds:.0f}s" if state in ("passed", "failed") else MARKS[state]


def _render(app: Application, reports: list[Any]) -> None:
    console = app.console
    if console.json_output:
        from csctl.engine.imagetest import SCHEMA, overall_exit_code

        results = [r.as_dict() for r in reports]
        console.print_json({"schema": SCHEMA, "exit_code": overall_exit_code(reports), "results": results})
    else:
        phases = [
            (r.label, p.phase.label, MARKS[p.state.value], p.seconds, p.detail)
            for r in reports
            for p in r.phases
        ]
        console.table("image test", ["test", "phase", "result", "seconds", "detail"], phases)
        checks = [(r.label, c.resource, c.promised, c.advertised, c.detected, _ok(c.ok), c.note)
                  for r in reports for c in r.checks]  # fmt: skip
        if checks:
            console.table("resources", ["test", "", "promised", "startd", "detected", "", "note"], checks)
    for r in reports:
        _outcome(app.console, r)


def _ok(ok: bool | None) -> str:
    return "" if ok is None else "ok" if ok else "MISMATCH"


def _outcome(console: Any, r: Any) -> None:
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
