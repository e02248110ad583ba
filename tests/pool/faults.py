"""The fault matrix's test bed: `csctl run` cycles against the real pool and local VMs, with
the checks every row makes (no job killed, no VM left, one-line errors) and its figures.

A row drives cycles as cron would (``csctl --json run`` in its own process), records every
cycle's report, and ends when the queue is empty and the local cloud lists no VM.
``CSCTL_FAULT_TABLE=<file>`` appends each row's figures to that file as JSON lines (the
table of docs/reliability.md is made from them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import htcondor2

from csctl.clouds.registry import make_cloud
from csctl.config import load_config
from testbed import pool
from tests.conftest import testbed_config_text

ONE_LINE = ("error: ", "warning: ", "hint: ")
# events that mean a job stopped running before it ended by itself
LOST = {htcondor2.JobEventType.JOB_EVICTED, htcondor2.JobEventType.JOB_RECONNECT_FAILED}


@dataclass
class Cycle:
    """One `csctl run`: its exit code, its JSON report (None if it printed none), stderr."""

    code: int
    report: dict[str, Any] | None
    stderr: str


@dataclass
class Bed:
    """One row's csctl configuration, local cloud and job bookkeeping."""

    condor_pool: Any
    tmp_path: Path
    vm_config: str = "UPDATE_INTERVAL = 5"
    extra: str = ""
    policy: str = ""
    cycles: list[Cycle] = field(default_factory=list)
    vms: set[str] = field(default_factory=set)  # every local VM id ever listed
    logs: list[str] = field(default_factory=list)
    clusters: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    on_cycle: Any = None  # called after every cycle (e.g. the VM player following a cloud)

    def __post_init__(self) -> None:
        self.state = self.tmp_path / "state"
        self.config = self.tmp_path / "csctl.toml"
        self.write_config()
        cfg = load_config(self.config)
        self.pool_name = cfg.pool.name
        self.cloud = make_cloud("local", cfg.clouds["local"])
        self.work = self.condor_pool.root / "var/lib/csctl-testbed/local"
        self.schedd = self.condor_pool.schedd()

    def write_config(self, extra: str | None = None) -> None:
        """(Re)write the configuration; csctl reads it anew on every run."""
        text = testbed_config_text(self.condor_pool, extra=self.extra if extra is None else extra)
        text = text.replace(
            f'state_dir = "{self.condor_pool.root}/var/lib/csctl-test-state"', f'state_dir = "{self.state}"'
        )
        text = text.replace('vm_config = "UPDATE_INTERVAL = 5"', f"vm_config = {json.dumps(self.vm_config)}")
        # one core per VM: two jobs need two VMs
        text = text.replace("cpus = 2\nmemory = 2000", "cpus = 1\nmemory = 1000", 1)
        text = text.replace("[pool]", f"[policy]\n{self.policy}\n\n[pool]", 1)
        self.config.write_text(text)

    # -- csctl -------------------------------------------------------------------------
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "csctl", "--config", str(self.config), *args]

    def env(self) -> dict[str, str]:
        return {**os.environ, "NO_COLOR": "1", "COLUMNS": "1000"}

    def run(self, *args: str, timeout: float = 120) -> Cycle:
        """One `csctl --json run` (or another command): recorded and checked for one-line errors."""
        argv = self.argv(*(args or ("--json", "run")))
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=timeout)
        return self.record(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`csctl --json run` (or another command) in the background."""
        argv = self.argv(*(args or ("--json", "run")))
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env()
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = 120) -> Cycle:
        out, err = proc.communicate(timeout=timeout)
        return self.record(proc.returncode, out, err)

    def record(self, code: int, stdout: str, stderr: str) -> Cycle:
        assert_one_line(stderr)
        report = None
        with contextlib.suppress(ValueError):
            report = json.loads(stdout) if stdout.strip().startswith("{") else None
        cycle = Cycle(code, report, stderr)
        self.cycles.append(cycle)
        self.vms |= {i.csctl_id for i in self.instances()}
        if self.on_cycle is not None:
            self.on_cycle()
        return cycle

    # -- the world ---------------------------------------------------------------------
    def instances(self) -> list[Any]:
        return self.cloud.list_instances(self.pool_name)

    def submit(self, count: int, seconds: int, **extra: str) -> int:
        """``count`` jobs sleeping ``seconds``, each with its own user log."""
        log = f"{self.condor_pool.jobs_dir}/fault-{uuid.uuid4().hex[:8]}.log"
        description = {
            "executable": "/bin/sleep",
            "arguments": str(seconds),
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
            "log": log,
            **extra,
        }
        cluster = self.condor_pool.submit(description, count=count)
        self.logs.append(log)
        self.clusters.append(cluster)
        return cluster

    def running(self) -> list[Any]:
        return list(self.schedd.query("JobStatus == 2", ["ClusterId", "ProcId", "MachineAttrCsctlId0"]))

    def queue_empty(self) -> bool:
        return not self.schedd.query("true", ["ClusterId"])

    def cycle_until(self, done: Any, deadline: float, pause: float = 1.5) -> None:
        """Run cycles until ``done()``; fail after ``deadline`` seconds."""
        limit = time.monotonic() + deadline
        while True:
            self.run()
            if done():
                return
            assert time.monotonic() < limit, self.story()
            self.schedd.reschedule()
            time.sleep(pause)

    def drain_queue(self, deadline: float = 240) -> int:
        """Cycles until the queue is empty and the local cloud lists no VM; how many."""
        before = len(self.cycles)
        self.cycle_until(lambda: self.queue_empty() and not self.instances(), deadline)
        return len(self.cycles) - before

    def story(self) -> str:
        """Every cycle's exit code and summary, for a failure message."""
        lines = []
        for c in self.cycles:
            r = c.report or {}
            lines.append(
                f"exit {c.code}: booted {r.get('booted')} terminated {r.get('terminated')} "
                f"vms {r.get('vms')} held {r.get('held')} errors {r.get('errors')} {c.stderr.strip()[:200]}"
            )
        return "\n".join(lines)

    # -- the promises ------------------------------------------------------------------
    def history(self) -> list[Any]:
        constraint = " || ".join(f"ClusterId == {c}" for c in self.clusters) or "false"
        return list(self.schedd.history(constraint, ["ClusterId", "ProcId", "JobStatus", "NumJobStarts"]))

    def lost_events(self) -> dict[str, int]:
        """Job id -> eviction or failed-reconnect events in the jobs' user logs."""
        lost: dict[str, int] = {}
        for log in self.logs:
            if not Path(log).exists():
                continue
            for event in htcondor2.JobEventLog(log).events(stop_after=0):
                if event.type in LOST:
                    job = f"{event.cluster}.{event.proc}"
                    lost[job] = lost.get(job, 0) + 1
        return lost

    def killed(self, by_fault: set[str] = frozenset()) -> tuple[list[str], list[str]]:
        """(jobs csctl killed, jobs the fault itself killed): a job started more than once or
        evicted; ``by_fault`` names the jobs on a VM the fault destroyed."""
        restarted = {f"{j['ClusterId']}.{j['ProcId']}" for j in self.history() if j["NumJobStarts"] > 1}
        hit = restarted | set(self.lost_events())
        return sorted(hit - by_fault), sorted(hit & by_fault)

    def left_behind(self) -> list[str]:
        """Local VMs, VM directories and VM processes still there."""
        left = [i.csctl_id for i in self.instances()]
        left += [p.name for p in self.work.glob("*") if p.is_dir()]
        needle = b"CONDOR_CONFIG=/var/lib/csctl-testbed/local/"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if any(v.startswith(needle) for v in (entry / "environ").read_bytes().split(b"\0")):
                        left.append(f"process {entry.name}")
        return left

    def check(self, jobs: int, by_fault: set[str] = frozenset()) -> tuple[list[str], list[str]]:
        """The row's promises: every job done, none killed by csctl, nothing left behind."""
        done = self.history()
        assert len(done) == jobs and all(j["JobStatus"] == 4 for j in done), (done, self.story())
        by_csctl, fault = self.killed(by_fault)
        assert by_csctl == [], (by_csctl, self.story())
        assert self.left_behind() == [], self.story()
        return by_csctl, fault

    def table_row(
        self, row: str, fault: str, injected: str, jobs: int, by_fault: list[str], cycles: int | None = None
    ) -> None:
        """Append the row's figures to $CSCTL_FAULT_TABLE, if set."""
        path = os.environ.get("CSCTL_FAULT_TABLE")
        if not path:
            return
        entry = {
            "row": row,
            "fault": fault,
            "injected": injected,
            "jobs": jobs,
            "killed_by_csctl": 0,
            "killed_by_fault": len(by_fault),
            "vms_booted": len(self.vms),
            "vms_left": len(self.left_behind()),
            "cycles": cycles if cycles is not None else len(self.cycles),
            "seconds": round(time.monotonic() - self.started),
        }
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def assert_one_line(stderr: str) -> None:
    """csctl's stderr holds one-line messages only: no traceback, nothing else."""
    assert "Traceback" not in stderr, stderr
    for line in stderr.splitlines():
        assert line.startswith(ONE_LINE), stderr


def terminated(bed: Bed, since: int = 0) -> int:
    """VMs the cycles from ``since`` on terminated, by their reports."""
    return sum((c.report or {}).get("terminated", 0) for c in bed.cycles[since:])


# -- processes of the test bed -------------------------------------------------------------
def daemon_pid(p: pool.Paths, comm: str, config_dir: str | None = None) -> int:
    """The pid of a daemon (``condor_collecto``, ``condor_schedd``, ``condor_startd``...) in the
    chroot; with ``config_dir``, the one whose CONDOR_CONFIG lies under it."""
    for pid in pool.pids_in_root(p):
        if pool.process_name(pid) != comm:
            continue
        if config_dir is None:
            if not _environ_has(pid, b"CONDOR_CONFIG=/var/lib/"):
                return pid
        elif _environ_has(pid, f"CONDOR_CONFIG={config_dir}".encode()):
            return pid
    raise LookupError(f"no {comm} running" + (f" under {config_dir}" if config_dir else ""))


def _environ_has(pid: int, prefix: bytes) -> bool:
    with contextlib.suppress(OSError):
        return any(v.startswith(prefix) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    return False


def vm_pid(bed: Bed, csctl_id: str, comm: str) -> int:
    """The pid of one local VM's ``condor_master`` or ``condor_startd``."""
    return daemon_pid(bed.condor_pool.paths, comm, f"/var/lib/csctl-testbed/local/{csctl_id}/")


def signal_pending(pid: int, signum: int) -> bool:
    """Whether ``signum`` waits, undelivered, for a (stopped) process."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [
        int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd", "ShdPnd"))
    ]
    return any(mask & (1 << (signum - 1)) for mask in masks)


def wait_for(what: Any, timeout: float, step: float = 0.05) -> Any:
    """Poll ``what()`` until it is truthy; its value, or AssertionError after ``timeout``."""
    limit = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < limit, f"waited {timeout} s for {what}"
        time.sleep(step)
    return value


def kill9(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


# -- a cloud API that fails on request -----------------------------------------------------
class FaultyAPI:
    """An EC2 endpoint on loopback in front of moto: ``mode`` "pass" forwards every call,
    "hang" holds each call 30 s and closes, "error" answers every call with HTTP 500, and
    "boot-error" answers RunInstances with 500 (other calls pass)."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading
        import urllib.request

        self.upstream = upstream
        self.mode = "pass"
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if api.mode == "hang":
                    time.sleep(30)
                    return
                if api.mode == "error" or (api.mode == "boot-error" and b"Action=RunInstances" in body):
                    self._answer(
                        500,
                        b"<Response><Errors><Error><Code>InternalError</Code><Message>"
                        b"injected</Message></Error></Errors></Response>",
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(api.upstream + self.path, body, headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as reply:
                        self._answer(reply.status, reply.read())
                except urllib.error.HTTPError as exc:
                    self._answer(exc.code, exc.read())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        import urllib.error  # noqa: F401 (used by the handler)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
