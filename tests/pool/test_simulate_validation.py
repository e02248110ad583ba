"""`csctl simulate` against reality: one bursty trace on the real test bed, then in the
simulator, must agree.

The real side is cron's: `csctl run` every CYCLE seconds on the HTCondor test pool with
local-driver VMs, while the trace's jobs (sleep jobs of two VM types, in two bursts) are
submitted at their offsets. The simulated side replays the schedd's own history of those
jobs (`condor_history -json` fields) under the same configuration, with the cycle
aligned on the first submit and the boot time measured on the test bed: from each VM's
boot call to the first job it started (the join and the negotiator's first match,
which the simulator's instant matching folds into the boot). The figures of this test
are quoted in docs/simulate.md.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import load_config
from csctl.engine.simulate import simulate
from csctl.engine.simulate.runner import Settings
from csctl.errors import ExitCode
from tests.pool.bed import config_text, csctl

pytestmark = pytest.mark.pool

CYCLE = 10  # seconds between two `csctl run`, as cron's interval
JOB_SECONDS = 20
# two bursts of 20 jobs: 16 one-core jobs for `small` (2 cores) of accounting group atlas
# and 4 two-core jobs for `big` (4 cores) of group babar each; the second lands between
# two cycles, 35 s after the first. The clouds cannot boot all at once (6 VMs, 3 a cycle),
# so fair share between the groups decides the order in both worlds.
BURSTS = ((0, 16, 4), (35, 16, 4))
EXTRA = """
[vm_types.big]
cpus = 4
memory = 4000
disk = 10
images = { local = "host" }

[policy]
max_new_vms_per_cycle = 3
"""


def _write_config(condor_pool, tmp_path: Path) -> Path:
    text = config_text(condor_pool, tmp_path, EXTRA)
    text = text.replace('driver = "local"\n', 'driver = "local"\nmax_vms = 6\n', 1)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


def _submit(pool, vm_type: str, cpus: int, count: int, group: str) -> None:
    pool.submit(
        {
            "accounting_group": group,
            "accounting_group_user": pool.user,
            "executable": "/bin/sleep",
            "arguments": str(JOB_SECONDS),
            "request_cpus": str(cpus),
            "request_memory": "100",
            "request_disk": "1000",
            "+VMType": f'"{vm_type}"',
            "should_transfer_files": "NO",
        },
        count=count,
    )


def _real_run(pool, cloud, config: Path) -> tuple[dict[str, set[str]], dict[str, float], float, int]:
    """Run the trace on the test bed: VMs seen per type, each VM's boot call (epoch
    seconds), the first submit, and the cycles run."""
    schedd = pool.schedd()
    booted: dict[str, float] = {}
    by_type: dict[str, set[str]] = {}
    pending = list(BURSTS)
    start = time.time()
    cycle, deadline = 0, time.monotonic() + 300
    while True:
        next_cycle = start + cycle * CYCLE
        while pending and start + pending[0][0] <= next_cycle:
            offset, small, big = pending.pop(0)
            time.sleep(max(0.0, start + offset - time.time()))
            _submit(pool, "small", 1, small, "atlas")
            _submit(pool, "big", 2, big, "babar")
        time.sleep(max(0.0, next_cycle - time.time()))
        result = csctl(config, "--json", "run")
        assert result.returncode == ExitCode.OK, result.stderr
        cycle += 1
        for instance in cloud.list_instances(pool.trust_domain):
            by_type.setdefault(instance.vm_type, set()).add(instance.csctl_id)
            if instance.booted_at is not None:
                booted[instance.csctl_id] = instance.booted_at.timestamp()
        if (
            not pending
            and not schedd.query("true", ["ClusterId"])
            and not cloud.list_instances(pool.trust_domain)
        ):
            return by_type, booted, start, cycle
        assert time.monotonic() < deadline, f"not done after {cycle} cycles: {result.stdout[-2000:]}"


def test_a_bursty_trace_boots_the_same_vms_and_waits_as_long_as_the_simulator_says(
    clean_queue, condor_pool, tmp_path
):
    config = _write_config(condor_pool, tmp_path)
    cloud = make_cloud("local", load_config(config).clouds["local"])
    cloud.terminate(cloud.list_instances(condor_pool.trust_domain))
    try:
        by_type, booted, start, cycles = _real_run(clean_queue, cloud, config)
    finally:
        cloud.terminate(cloud.list_instances(condor_pool.trust_domain))

    fields = ["QDate", "JobStartDate", "RemoteWallClockTime", "RequestCpus", "RequestMemory", "RequestDisk"]
    fields += ["Owner", "AcctGroup", "VMType", "Requirements", "JobStatus", "MachineAttrCsctlId0"]
    history = list(clean_queue.schedd().history(f"QDate >= {int(start) - 1}", fields, match=100))
    jobs = sum(small + big for _, small, big in BURSTS)
    assert len(history) == jobs and all(ad["JobStatus"] == 4 for ad in history), history
    real_waits = sorted(ad["JobStartDate"] - ad["QDate"] for ad in history)
    first_start: dict[str, int] = {}
    for ad in history:
        vm = ad["MachineAttrCsctlId0"]
        first_start[vm] = min(first_start.get(vm, ad["JobStartDate"]), ad["JobStartDate"])
    delays = [first_start[vm] - booted[vm] for vm in first_start]
    mean, sd = statistics.mean(delays), statistics.pstdev(delays)

    trace = tmp_path / "history.json"
    # as `condor_history -json` writes it: expressions as /Expr(...)/
    trace.write_text("[" + ",".join(ad.printJson() for ad in history) + "]")
    settings = Settings(seed=0, cycle=CYCLE, boot_time=(mean, sd))
    [simulated] = simulate(load_config(config), trace, settings, fmt="history").variants

    real_boots = {t: len(ids) for t, ids in sorted(by_type.items())}
    sim_boots = dict(sorted(simulated.boots_by_type.items()))
    real_p50 = statistics.median_low(real_waits)
    sim_p50 = simulated.wait_seconds["p50"]
    figures = (
        f"real: {cycles} cycles, boots {real_boots}, boot-to-first-job {mean:.1f}±{sd:.1f} s, "
        f"wait p50 {real_p50} s max {real_waits[-1]} s; simulated: boots {sim_boots}, "
        f"wait p50 {sim_p50} s max {simulated.wait_seconds['max']} s"
    )
    print(figures)  # quoted in docs/simulate.md
    assert simulated.served == jobs, figures
    assert set(sim_boots) == set(real_boots) == {"small", "big"}, figures
    assert all(abs(sim_boots[t] - real_boots[t]) <= 1 for t in real_boots), figures
    assert sim_p50 is not None and abs(sim_p50 - real_p50) <= CYCLE, figures
