"""``csctl demand``: what the queue needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode

if TYPE_CHECKING:
    from csctl.plan.demand import Demand


@click.command("demand")
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read idle jobs from a `condor_q -json` file instead of the pool's schedds.",
)
@click.option("--explain", is_flag=True, help="Say why each job no VM type can serve is left out.")
@json_option
@pass_app
def command(app: Application, from_file: Path | None, explain: bool) -> None:
    """Show which VMs the idle jobs need, minus what is already booting or has room.

    Jobs are grouped by identical attributes and matched HTCondor's way: each job's
    Requirements is evaluated against the ad a VM of each configured type would have.
    Cloud Scheduler attributes (+VMType, +VMMem, +VMCPUCores, +VMStorage, +TargetClouds,
    +VMAMI, ...) and RequestCpus/RequestMemory/RequestDisk are both honoured.

    \b
    Examples:
      csctl demand
      csctl demand --explain
      condor_q -json > jobs.json; csctl demand --from-file jobs.json --json
    """
    from contextlib import nullcontext

    from csctl.engine.services import idle_jobs_ahead

    # the schedd query goes out before the configuration is validated whole (pydantic's
    # import included) and before the planners are imported
    with idle_jobs_ahead(app.config_path) if from_file is None else nullcontext():
        services = app.services
        if from_file is None:
            services.begin_idle_jobs()
        from csctl.engine.demand import demand

        result = demand(services, from_file)
    _render(app, result.demand, explain)
    if result.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _render(app: Application, demand: Demand, explain: bool) -> None:
    console = app.console
    if console.json_output:
        from dataclasses import asdict

        console.print_json(
            {**asdict(demand), "vms_needed": demand.vms_needed, "need_by_owner": demand.need_by_owner}
        )
        return
    from csctl.plan.text import shown  # every value from a job passes through it

    for warning in demand.warnings:
        console.warn(shown(warning, 300))
    rows = [
        (
            shown(r.vm_type),
            shown(", ".join(r.clouds)),
            r.idle_jobs,
            r.jobs_on_existing,
            r.vms_booting,
            r.vms_with_room,
            r.vms_needed,
        )
        for r in demand.requirements
    ]
    columns = ["VM type", "clouds", "idle jobs", "on existing", "booting", "with room", "needed"]
    if rows:
        console.table(None, columns, rows)
    owners = [(shown(owner), vms) for owner, vms in demand.need_by_owner.items()]
    if len(owners) > 1:  # one owner needs it all: the table above says so already
        console.table("new VMs by owner", ["owner", "needed"], owners)
    served = demand.idle_jobs - sum(r.jobs for r in demand.rejected)
    console.result(f"{demand.idle_jobs} idle jobs: {served} servable, {demand.vms_needed} new VMs needed")
    rejected = sum(r.jobs for r in demand.rejected)
    if rejected and not explain:
        console.result(f"{rejected} jobs no VM type can serve (see --explain)")
    if explain:
        for r in demand.rejected:
            ids = ", ".join(shown(i, 40) for i in r.job_ids) + (" ..." if r.jobs > len(r.job_ids) else "")
            console.result(f"{r.jobs} job(s) of {shown(r.owner)} ({ids}):")
            for reason in r.reasons:
                console.result(f"  - {shown(reason, 300)}")
