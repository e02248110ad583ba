"""The demo behind ``scripts/demo``: csctl's cron cycle on the embedded test bed.

Brings the test pool up, writes a csctl configuration with a local cloud (VMs are
HTCondor startds started from csctl's own cloud-init payload), submits jobs of two VM
types as an ordinary user, then runs ``csctl run`` every few seconds until the queue is
empty and every VM is retired. Leaves the pool as it found it.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testbed import pool

CONFIG = """\
state_dir = "{state}"

[pool]
name = "{name}"
collector = "{collector}"
filesystem_domain = "{name}"
signing_key = "{key}"
vm_config = "UPDATE_INTERVAL = 5"

[policy]
max_new_vms_per_cycle = 4
join_timeout_minutes = 5

[clouds.local]
driver = "local"
root = "{root}"
work_dir = "/var/lib/csctl-demo/vms"
max_vms = 4
# the test bed's chroot: loopback only, and jobs may not unshare mount namespaces
condor_config = '''
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
MOUNT_UNDER_SCRATCH =
'''

[vm_types.pandacernvm]
cpus = 4
memory = 4000
disk = 10
images = {{ local = "host" }}

[vm_types.small]
cpus = 1
memory = 1000
disk = 5
images = {{ local = "host" }}
"""

JOBS = [
    # the seed's dialect: the job names the VM type it needs
    (
        {
            "executable": "/bin/sleep",
            "arguments": "5",
            "should_transfer_files": "NO",
            "requirements": 'VMType =?= "pandacernvm" && Target.Arch == "X86_64"',
            "+VMCPUCores": '"4"',
            "+VMMem": '"4000"',
            "+TargetClouds": '"local"',
        },
        6,
    ),
    # the modern dialect: resources only
    (
        {
            "executable": "/bin/sleep",
            "arguments": "3",
            "should_transfer_files": "NO",
            "request_cpus": "1",
            "request_memory": "500",
            "+VMType": '"small"',
        },
        3,
    ),
]


def csctl(config: Path, *args: str, check: bool = False) -> int:
    """Run csctl as an operator would, output straight to the terminal."""
    return subprocess.run(
        [sys.executable, "-m", "csctl", "--config", str(config), *args], check=check
    ).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-cycles", type=int, default=40)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args()

    p = pool.paths()
    p.run.mkdir(parents=True, exist_ok=True)
    with open(p.run / "session.lock", "w") as lock:
        if _busy(lock):
            print("== waiting for a test session to finish with the test pool", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _demo(p, args)


def _busy(lock: Any) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True


def _demo(p: pool.Paths, args: argparse.Namespace) -> int:
    """Submit, then cycle until the queue is empty and every VM is retired."""
    was_running = pool.pool_answers(p)
    pool.up(p.base)
    os.environ.update(pool.client_env(p))
    import htcondor2

    state = Path(tempfile.mkdtemp(prefix="csctl-demo-"))
    config = state / "csctl.toml"
    config.write_text(
        CONFIG.format(
            state=state, name=pool.POOL_NAME, collector=pool.COLLECTOR, key=p.signing_key, root=p.root
        )
    )
    schedd = htcondor2.Schedd(htcondor2.Collector(pool.COLLECTOR).locate(htcondor2.DaemonType.Schedd))
    for description, count in JOBS:
        schedd.submit(htcondor2.Submit({"initialdir": p.jobs, **description}), count=count)
    print(f"== submitted {sum(c for _, c in JOBS)} jobs as {pool.USER}; configuration {config}\n")
    csctl(config, "demand", "--explain")
    try:
        for cycle in range(1, args.max_cycles + 1):
            print(f"\n== cycle {cycle}: csctl run")
            csctl(config, "run")
            csctl(config, "join-check")
            if not schedd.query("true", ["ClusterId"]) and not any(
                (p.root / "var/lib/csctl-demo/vms").glob("*/instance.json")
            ):
                print("\n== queue empty and every VM retired")
                return 0
            schedd.reschedule()
            time.sleep(args.interval)
        print("== stopped after --max-cycles", file=sys.stderr)
        return 1
    finally:
        schedd.act(htcondor2.JobAction.Remove, "true")
        if not was_running:
            pool.down(p.base)


if __name__ == "__main__":
    sys.exit(main())
