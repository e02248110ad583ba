"""csctl demand vs. a bare schedd query, at 10,000 and 100,000 idle jobs, and with four
schedds of 250,000 idle jobs each.

Submits jobs of 20 shapes (five Cloud Scheduler style, fifteen modern) as the test
pool's user, then times, each in a fresh process: the bare query of every idle job ad with
csctl's projection; the very query csctl sends (the schedd groups the jobs itself,
QueryOpt.GroupBy); and `csctl --json demand`. The three run in turn, ``--rounds`` times,
and the median of each is shown: the schedd's own time for one query varies by a fifth
from one to the next. Peak RSS of each comes from wait4().

The four-schedd case runs four extra schedds next to the pool's own
(``testbed.pool.start_schedd``; csctl is configured with their names) and compares
`csctl demand`, which asks every schedd at once, with the slowest schedd's grouped
query alone. ``--per-schedd N`` sets its size
(0 skips it); the extra schedds are shut down before the pool is handed back.

Every command runs with its bytecode cached (in a temporary PYTHONPYCACHEPREFIX that its
first run fills), as an installed csctl has it: pip compiles every module at install, while a
checkout under PYTHONDONTWRITEBYTECODE would compile csctl's forty-odd modules on every run
(about 0.1 s that no operator pays). ``--compile-each-run`` measures that case instead.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed import pool  # noqa: E402

SIZES = (10_000, 100_000)
RUNS = 3  # of each command of the four-schedd case: the best is shown
ROUNDS = 7  # of each command per one-schedd size: the median is shown
SCHEDDS = 4  # extra ones, next to the pool's own (which stays empty and is not asked)
PER_SCHEDD = 250_000

BARE = """
import sys, htcondor2
from csctl.plan.jobs import PROJECTION
ads = htcondor2.Schedd(htcondor2.Collector("{collector}").locate(htcondor2.DaemonType.Schedd)).query(
    "JobStatus == 1", list(PROJECTION))
print(len(ads), file=sys.stderr)
"""

GROUPED = """
import sys, htcondor2
from csctl.plan.jobs import SIGNIFICANT_ATTRS
schedds = htcondor2.Collector("{collector}").locateAll(htcondor2.DaemonType.Schedd)
ad = [s for s in schedds if s["Name"] == "{name}"][0] if "{name}" else schedds[0]
ads = htcondor2.Schedd(ad).query(
    "JobStatus == 1 && CsctlImageTest =?= undefined", [*SIGNIFICANT_ATTRS, "JobStatus", "CsctlImageTest"],
    opts=htcondor2.QueryOpt.GroupBy)
print(len(ads), file=sys.stderr)
"""

CONFIG = """
state_dir = "{state}"
[pool]
name = "{name}"
collector = "{collector}"
filesystem_domain = "{name}"
[clouds.FGHotel]
driver = "local"
work_dir = "{state}/fg"
[clouds.Hermes]
driver = "local"
work_dir = "{state}/hermes"
[vm_types.pandacernvm]
cpus = 8
memory = 18000
disk = 160
images = {{ FGHotel = "cernvm", Hermes = "ami-1" }}
[vm_types.small]
cpus = 2
memory = 4000
disk = 20
images = {{ Hermes = "ami-2" }}
"""


def shapes() -> list[dict[str, str]]:
    """Twenty distinct job shapes."""
    out = []
    for i in range(5):
        out.append(
            {
                "requirements": 'VMType =?= "pandacernvm" && Target.Arch == "X86_64"',
                "+VMCPUCores": "8",
                "+VMMem": str(16000 + i * 100),
                "+VMStorage": "160",
                "+TargetClouds": '"FGHotel,Hermes"',
            }
        )
    for i in range(15):
        out.append({"request_cpus": str(1 + i % 2), "request_memory": str(500 + 100 * i)})
    return out


def submit(schedd, total: int) -> None:
    import htcondor2

    base = {"executable": "/bin/true", "should_transfer_files": "NO", "initialdir": pool.paths().jobs}
    per_shape, rest = divmod(total, 20)
    for i, shape in enumerate(shapes()):
        schedd.submit(htcondor2.Submit({**base, **shape}), count=per_shape + (1 if i < rest else 0))


def remove_all(schedd, timeout: float = 600) -> None:
    """Empty the queue and wait until it is empty: removed jobs count against the schedd's
    MAX_JOBS_PER_OWNER (100,000 by default) until they have left. (The schedd refuses a
    removal that matches no job.)"""
    import htcondor2

    if schedd.query("JobStatus != 3", ["ClusterId"], limit=1):
        schedd.act(htcondor2.JobAction.Remove, "JobStatus != 3")
    deadline = time.monotonic() + timeout
    while schedd.query("true", ["ClusterId"], limit=1):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the queue is not empty {timeout} s after removing every job")
        time.sleep(1)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    # in the checkout next to this script: `python -m csctl` puts the working directory first
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def best(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    results = [timed(argv, env) for _ in range(RUNS)]
    return min(r[0] for r in results), max(r[1] for r in results)


def in_turn(argvs: list[list[str]], env: dict[str, str], rounds: int) -> list[tuple[float, float]]:
    """Median wall seconds and peak RSS (MB) of each command, the commands run in turn for
    ``rounds`` rounds after a warm-up round (bytecode and page cache): a slow spell of the
    schedd or of the machine then touches every command alike, as it would not touch a
    best of a few runs taken one command after the other."""
    for argv in argvs:
        timed(argv, env)
    results: list[list[tuple[float, float]]] = [[] for _ in argvs]
    for _ in range(rounds):
        for argv, found in zip(argvs, results, strict=True):
            found.append(timed(argv, env))
    return [(statistics.median(r[0] for r in found), max(r[1] for r in found)) for found in results]


def schedd_names(collector: str, prefix: str, count: int, timeout: float = 60) -> list[str]:
    """The names of the schedds named ``prefix``... once the collector knows ``count`` of them."""
    import htcondor2

    deadline = time.monotonic() + timeout
    while True:
        ads = htcondor2.Collector(collector).locateAll(htcondor2.DaemonType.Schedd)
        names = sorted(str(ad["Name"]) for ad in ads if str(ad["Name"]).startswith(prefix))
        if len(names) >= count:
            return names
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(names)} of {count} schedds advertised after {timeout} s")
        time.sleep(1)


def many_schedds(per_schedd: int, env: dict[str, str], config: Path) -> tuple:
    """SCHEDDS extra schedds of ``per_schedd`` jobs each (the pool's own stops at 100,000
    jobs per owner): the grouped query of each alone, then csctl demand over all of them."""
    import htcondor2

    extra = [pool.start_schedd(f"bench{i}") for i in range(1, SCHEDDS + 1)]
    try:
        names = schedd_names(pool.COLLECTOR, "bench", SCHEDDS)
        text = config.read_text().replace("[pool]\n", f"[pool]\nschedds = {names!r}\n".replace("'", '"'))
        many = config.with_name("many-schedds.toml")
        many.write_text(text)
        collector = htcondor2.Collector(pool.COLLECTOR)
        schedds = [htcondor2.Schedd(collector.locate(htcondor2.DaemonType.Schedd, name)) for name in names]
        t0 = time.perf_counter()
        for schedd in schedds:
            submit(schedd, per_schedd)
        submit_s = time.perf_counter() - t0
        grouped = {}
        for name in names:
            argv = [sys.executable, "-c", GROUPED.format(collector=pool.COLLECTOR, name=name)]
            grouped[name] = best(argv, env)[0]
        demand = [sys.executable, "-m", "csctl", "--config", str(many), "--json", "demand"]
        demand_s, demand_mb = best(demand, env)
        return SCHEDDS * per_schedd, submit_s, grouped, demand_s, demand_mb
    finally:
        for schedd in extra:  # their queues go with them: start_schedd makes a fresh LOCAL_DIR
            schedd.shut_down()


def main() -> None:
    parser = argparse.ArgumentParser(description="csctl demand against bare schedd queries")
    parser.add_argument("--per-schedd", type=int, default=PER_SCHEDD, help="jobs per schedd, 4 schedds")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=list(SIZES),
        help="one-schedd sizes, comma-separated, ascending ('' skips them)",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each command per size (median)")
    parser.add_argument(
        "--compile-each-run",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as inherited, so a checkout compiles csctl on every run",
    )
    args = parser.parse_args()
    p = pool.paths()
    p.run.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(p.run / "session.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # exclusive use of the test pool, before touching it
        pool.up(p.base)
        pool.stop_schedds()  # left over by an interrupted run
        env = {**os.environ, **pool.client_env(p), "PYTHONPATH": str(ROOT)}
        state = Path(tempfile.mkdtemp(prefix="csctl-bench-"))
        if not args.compile_each_run:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(state / "pycache")
        os.environ.update(pool.client_env(p))
        import htcondor2

        schedd = htcondor2.Schedd(htcondor2.Collector(pool.COLLECTOR).locate(htcondor2.DaemonType.Schedd))
        config = state / "csctl.toml"
        config.write_text(CONFIG.format(state=state, name=pool.POOL_NAME, collector=pool.COLLECTOR))
        bare = [sys.executable, "-c", BARE.format(collector=pool.COLLECTOR)]
        grouped = [sys.executable, "-c", GROUPED.format(collector=pool.COLLECTOR, name="")]
        demand = [sys.executable, "-m", "csctl", "--config", str(config), "--json", "demand"]
        try:
            remove_all(schedd)
            submitted = 0
            for size in args.sizes:
                t0 = time.perf_counter()
                submit(schedd, size - submitted)
                submitted = size
                submit_s = time.perf_counter() - t0
                (bare_s, bare_mb), (grouped_s, _), (demand_s, demand_mb) = in_turn(
                    [bare, grouped, demand], env, args.rounds
                )
                rows.append((size, submit_s, bare_s, grouped_s, demand_s, bare_mb, demand_mb))
            remove_all(schedd)
            print_one_schedd(rows, args.rounds, args.compile_each_run)
            if args.per_schedd:
                print_many_schedds(many_schedds(args.per_schedd, env, config))
        finally:
            remove_all(schedd)
            pool.stop_schedds()
            shutil.rmtree(state, ignore_errors=True)  # the configuration, state and bytecode cache


def print_one_schedd(rows: list[tuple], rounds: int, compiled_each_run: bool) -> None:
    bytecode = "compiled on every run" if compiled_each_run else "bytecode cached"
    print(
        f"csctl demand benchmark (median of {rounds} rounds, commands in turn; fresh processes; {bytecode})"
    )
    print(
        "| idle jobs | submit s | bare query s | grouped query s | csctl demand s "
        "| ratio to bare | ratio to grouped | bare RSS MB | demand RSS MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, sub, b, g, d, bmb, dmb in rows:
        print(
            f"| {size:,} | {sub:.1f} | {b:.2f} | {g:.2f} | {d:.2f} | {d / b:.2f} | {d / g:.2f} "
            f"| {bmb:.0f} | {dmb:.0f} |"
        )
    print("targets: ratio to bare <= 1.0 at 10,000 and <= 1.3 at 100,000; demand RSS <= 250 MB at 100,000")
    print("(the grouped query is the one csctl sends: the rest of its ratio is start-up and matching)")
    sys.stdout.flush()


def print_many_schedds(multi: tuple) -> None:
    total, submit_s, grouped, demand_s, demand_mb = multi
    slowest = max(grouped.values())
    print(f"\ncsctl demand, {SCHEDDS} schedds of {total // SCHEDDS:,} idle jobs each (best of {RUNS} runs)")
    print(
        "| idle jobs | submit s | grouped query s per schedd | slowest s | csctl demand s "
        "| ratio to slowest | demand RSS MB |"
    )
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    each = ", ".join(f"{g:.2f}" for g in grouped.values())
    print(
        f"| {total:,} | {submit_s:.1f} | {each} | {slowest:.2f} | {demand_s:.2f} | {demand_s / slowest:.2f} "
        f"| {demand_mb:.0f} |"
    )
    print("targets: ratio to the slowest schedd's grouped query <= 1.1, demand RSS <= 100 MB")


if __name__ == "__main__":
    main()
