"""The fault matrix: real faults under `csctl run` cycles on the real pool with real jobs on
local VMs. Each row then runs cycles until the queue is empty and checks csctl's promises:
no running job killed by csctl (no job started twice, no eviction in its user log), no VM
left behind, and only one-line errors. docs/reliability.md tabulates the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest

from csctl.errors import ExitCode
from testbed import pool
from testbed.fixtures_moto import free_port
from tests.pool.faults import (
    Bed,
    FaultyAPI,
    daemon_pid,
    kill9,
    signal_pending,
    terminated,
    vm_pid,
    wait_for,
)

pytestmark = pytest.mark.pool


@pytest.fixture
def bed(clean_queue, condor_pool, tmp_path):
    """A fresh row: empty queue, no local VM before or after."""
    # csctl reads which VM runs each job from the job ads (the site requirement)
    attrs = pool.in_root(condor_pool.paths, "condor_config_val", "-schedd", "SYSTEM_JOB_MACHINE_ATTRS")
    assert "CsctlId" in attrs.stdout, f"the pool's schedd lacks SYSTEM_JOB_MACHINE_ATTRS = CsctlId: {attrs}"
    made: list[Bed] = []

    def make(**kwargs) -> Bed:
        b = Bed(condor_pool, tmp_path, **kwargs)
        b.cloud.terminate(b.instances())
        made.append(b)
        return b

    yield make
    for b in made:
        condor_pool.remove_all_jobs()
        b.cloud.terminate(b.instances())


def all_running(b: Bed, n: int):
    return lambda: len(b.running()) == n


# -- 1. the collector ----------------------------------------------------------------------
def test_collector_killed_while_jobs_run(bed, condor_pool):
    # the VMs keep HTCondor's default UPDATE_INTERVAL: after the restart their ads stay
    # missing until a job ends (a state change) or 300 s pass
    b = bed(vm_config="UPDATE_INTERVAL = 300")
    b.submit(2, 40)
    b.cycle_until(all_running(b, 2), 90)
    first = len(b.cycles)
    os.kill(daemon_pid(condor_pool.paths, "condor_collecto"), signal.SIGKILL)
    gap = []
    while len(b.running()) == 2:  # until a job ends and its VM speaks again
        gap.append(b.run())
        time.sleep(1.5)
    assert terminated(b, first) == 0, b.story()
    held = [c for c in gap if c.report and c.report["held"]]
    unreachable = [c for c in gap if c.code == ExitCode.POOL_UNREACHABLE]
    assert held, b.story()  # the safety valve spoke while both VMs had no ad
    # held cycles still report every VM, the ones without an ad as unseen
    assert all("unseen" in c.report["vms"]["local"] for c in held), b.story()
    b.drain_queue()
    wait_for(lambda: collector_back(condor_pool), 30, step=0.5)  # drop this process's old session
    _, fault = b.check(jobs=2)
    b.table_row(
        "1",
        "collector SIGKILLed, restarted by its master; VMs at UPDATE_INTERVAL 300",
        f"kill -9 condor_collector; {len(gap)} gap cycles ({len(held)} held, "
        f"{len(unreachable)} pool unreachable)",
        2,
        fault,
    )


# -- 2. the schedd -------------------------------------------------------------------------
def test_schedd_restarted_and_down(bed, condor_pool):
    b = bed()
    b.submit(2, 45, job_lease_duration="600")
    b.cycle_until(all_running(b, 2), 90)
    first = len(b.cycles)
    os.kill(daemon_pid(condor_pool.paths, "condor_schedd"), signal.SIGKILL)  # the master restarts it
    for _ in range(2):
        b.run()
        time.sleep(1)
    b.schedd = wait_for(lambda: schedd_back(condor_pool), 120, step=1)
    pool.in_root(condor_pool.paths, "condor_off", "-daemon", "schedd")
    wait_for(lambda: not _schedd_known(condor_pool), 30, step=0.5)
    down = [b.run(), b.run()]
    assert all(c.code == ExitCode.POOL_UNREACHABLE for c in down), b.story()
    assert all("schedd" in c.stderr for c in down)
    pool.in_root(condor_pool.paths, "condor_on", "-daemon", "schedd")
    b.schedd = wait_for(lambda: schedd_back(condor_pool), 120, step=1)
    assert terminated(b, first) == 0, b.story()
    b.drain_queue()
    _, fault = b.check(jobs=2)
    b.table_row(
        "2",
        "schedd killed (restarted by its master), then down for two cycles",
        "kill -9 condor_schedd; condor_off -daemon schedd for 2 cycles",
        2,
        fault,
    )


def collector_back(condor_pool) -> bool:
    """Whether the collector answers this process (its first query after a restart may not)."""
    import htcondor2

    try:
        htcondor2.Collector(condor_pool.collector).query(htcondor2.AdType.Schedd, projection=["Name"])
    except htcondor2.HTCondorException:
        return False
    return True


def schedd_back(condor_pool):
    """The pool's schedd once it answers again, else None."""
    import htcondor2

    try:
        schedd = condor_pool.schedd()
        schedd.query("true", ["ClusterId"])
    except (htcondor2.HTCondorException, IndexError):
        return None
    return schedd


def _schedd_known(condor_pool) -> bool:
    import htcondor2

    return bool(htcondor2.Collector(condor_pool.collector).query(htcondor2.AdType.Schedd))


# -- 3. one cloud's API fails, another serves ----------------------------------------------
def far_cloud(endpoint: str, ec2) -> str:
    return f"""
[clouds.far]
driver = "ec2"
region = "{ec2.region}"
profile = "{ec2.profile}"
endpoint_url = "{endpoint}"
max_attempts = 1
connect_timeout = 1
read_timeout = 5
priority = 100
"""


def test_one_cloud_api_down_slow_or_erroring_while_another_serves(bed, ec2):
    api = FaultyAPI(ec2.endpoint)
    refused = f"http://127.0.0.1:{free_port()}"
    b = bed()
    images = f'images = {{ local = "host", far = "{ec2.image_id()}" }}\nflavors = {{ far = "t3.micro" }}'
    seen: dict[str, list] = {}
    try:
        for mode, endpoint in (
            ("refused", refused),
            ("hang", api.endpoint),
            ("error", api.endpoint),
            ("boot-error", api.endpoint),
        ):
            api.mode = mode if mode != "refused" else "pass"
            b.write_config(extra=far_cloud(endpoint, ec2))
            b.config.write_text(b.config.read_text().replace('images = { local = "host" }', images, 1))
            # no VM left from the last fault: the new job needs a boot
            b.cycle_until(lambda: not b.instances(), 60)
            cluster = b.submit(1, 3)
            before = len(b.cycles)
            b.cycle_until(lambda c=cluster: not b.schedd.query(f"ClusterId == {c}", ["ClusterId"]), 120)
            seen[mode] = b.cycles[before:]
            # the fault's first cycle reports the failing cloud (exit 4) and serves the other
            assert seen[mode][0].code == ExitCode.PARTIAL, b.story()
        backoff = json.loads((b.state / "backoff.json").read_text())
        assert "far" in backoff["until"], backoff  # the boot failure backed the cloud off
        api.mode = "pass"  # the cloud returns
        b.drain_queue()
    finally:
        api.close()
    _, fault = b.check(jobs=4)
    leaked = ec2.client().describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )["Reservations"]
    assert leaked == []
    for mode in ("refused", "hang", "error"):
        assert all(any("far" in e for e in c.report["errors"]) for c in seen[mode] if c.report), b.story()
    b.table_row(
        "3",
        "one cloud's API refused / hung 30 s / HTTP 500 on every call / 500 on boot, another cloud serving",
        "EC2 endpoint: closed port; loopback server holding or failing calls in front of moto",
        4,
        fault,
    )


# -- 4 and 5. csctl killed in each phase; two commands at once -----------------------------
BIG = """
[vm_types.big]
cpus = 1
memory = 3000
disk = 10
images = { local = "host" }
"""


def draining(condor_pool, csctl_id: str) -> bool:
    import htcondor2

    ads = htcondor2.Collector(condor_pool.collector).query(
        htcondor2.AdType.Startd, f'CsctlId == "{csctl_id}"', ["Draining"]
    )
    return bool(ads) and all(ad.get("Draining") is True for ad in ads)


def slot_states(condor_pool) -> list[dict]:
    import htcondor2

    ads = htcondor2.Collector(condor_pool.collector).query(
        htcondor2.AdType.Startd, "CsctlId =!= undefined", ["Name", "State", "Draining", "NumDynamicSlots"]
    )
    return [dict(ad) for ad in ads]


def test_run_killed_in_each_phase_and_commands_at_once(bed, condor_pool):
    b = bed(extra=BIG)
    b.submit(2, 15)
    # two runs at once: one waits its turn or exits 6; nothing is booted twice
    procs = [b.start(), b.start()]
    codes = sorted(b.finish(p).code for p in procs)
    assert codes in ([0, 0], [0, ExitCode.LOCKED]), b.story()
    b.cycle_until(lambda: len(b.running()) == 2, 90)
    wait_for(b.queue_empty, 60, step=0.5)  # both jobs ran; their VMs are idle, no cycle since
    vm_a, vm_b = sorted(i.csctl_id for i in b.instances())
    assert len(b.vms) == 2, b.story()
    # the schedd gives the claims back a little after the jobs end
    wait_for(
        lambda: all(
            s["State"] == "Unclaimed" and not s.get("NumDynamicSlots") for s in slot_states(condor_pool)
        ),
        60,
        step=0.5,
    )

    # after the boot returned, mid-drain: B's startd hangs, so csctl waits on it after
    # booting C for the big job and draining A
    startd_b = vm_pid(b, vm_b, "condor_startd")
    os.kill(startd_b, signal.SIGSTOP)
    try:
        b.submit(1, 20, requirements="true", request_memory="2500")  # only a big VM has room
        first = b.start()
        wait_for(lambda: draining(condor_pool, vm_a) or first.poll() is not None, 40)
        assert first.poll() is None, (b.finish(first), slot_states(condor_pool), b.story())
        booted = [i for i in b.instances() if i.csctl_id not in (vm_a, vm_b)]
        assert len(booted) == 1 and booted[0].state.value == "running"
        # a second run and a manual retire, meanwhile: both exit 6 naming the holder
        for args in (("--json", "run"), ("retire",)):
            other = b.finish(b.start(*args), timeout=60)
            assert other.code == ExitCode.LOCKED, other.stderr
            assert f"(pid {first.pid})" in other.stderr.splitlines()[0]
        assert first.poll() is None
        kill9(first)
        assert first.returncode == -signal.SIGKILL
    finally:
        os.kill(startd_b, signal.SIGCONT)

    # mid-terminate: A's master hangs on csctl's shutdown signal
    master_a = vm_pid(b, vm_a, "condor_master")
    os.kill(master_a, signal.SIGSTOP)
    try:
        second = b.start()
        wait_for(lambda: signal_pending(master_a, signal.SIGQUIT), 60)
        kill9(second)
    finally:
        os.kill(master_a, signal.SIGCONT)
    b.drain_queue()
    _, fault = b.check(jobs=3)
    assert len(b.vms) == 3, b.story()  # A, B, C: nothing booted twice
    b.table_row(
        "4+5",
        "csctl run kill -9 after boot/mid-drain and mid-terminate; two runs and run + retire at once",
        "SIGKILL when the new VM runs and the first drain landed "
        "(next startd stopped), and when a VM's master holds the shutdown signal",
        3,
        fault,
        cycles=len(b.cycles),
    )


# -- 6. the state directory ----------------------------------------------------------------
def test_state_directory_read_only_full_or_corrupt(bed, tmp_path):
    b = bed()
    state = b.state
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(state)], check=True)
    try:
        b.submit(1, 5)
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        ro = b.run()
        assert ro.code == ExitCode.ERROR and "not usable" in ro.stderr and not b.instances(), ro.stderr
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=True)

        (state / "run.lock").symlink_to("/etc/passwd")
        link = b.run()
        assert link.code == ExitCode.ERROR and "cannot open the lock" in link.stderr and not b.instances()
        (state / "run.lock").unlink()

        (state / "backoff.json").write_bytes(b"\x00garbage{")
        os.mkfifo(state / "unseen.json")
        corrupt = b.run()
        assert corrupt.code == 0 and corrupt.report["booted"] == 1, b.story()
        assert len([w for w in corrupt.report["warnings"] if "ignored" in w]) == 2, corrupt.report
        b.cycle_until(lambda: len(b.running()) == 1, 60)

        (state / "unseen.json").unlink()
        (state / "unseen.json").symlink_to("/etc/shadow")
        with open(state / "filler", "wb") as f, contextlib.suppress(OSError):  # the file system full
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        full = b.run()
        assert full.code == ExitCode.ERROR and "full" in full.stderr, full.stderr
        (state / "filler").unlink()
        b.drain_queue()
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)
    _, fault = b.check(jobs=1)
    assert len(b.vms) == 1, b.story()  # nothing booted twice
    b.table_row(
        "6",
        "state directory read-only, full, lock a symlink, backoff garbage, unseen a FIFO then a symlink",
        "tmpfs of 2 MB: remount ro; filled; files replaced",
        1,
        fault,
        cycles=len(b.cycles),
    )


# -- 7. a VM's HTCondor dies; a VM stops in its cloud --------------------------------------
def test_vm_startd_dies_and_vm_stopped_while_busy(bed, condor_pool):
    b = bed()
    b.submit(2, 40, job_lease_duration="20")
    b.cycle_until(lambda: len([j for j in b.running() if j.get("MachineAttrCsctlId0")]) == 2, 90)
    where = {str(j["MachineAttrCsctlId0"]): f"{j['ClusterId']}.{j['ProcId']}" for j in b.running()}
    vm_1, vm_2 = sorted(where)
    os.kill(vm_pid(b, vm_1, "condor_startd"), signal.SIGKILL)  # its master starts a new one
    # the VM stops in its cloud: HTCondor shuts down fast (the job dies with it), the VM's
    # processes end, and the local driver reports it STOPPED
    master_2 = vm_pid(b, vm_2, "condor_master")
    os.kill(master_2, signal.SIGQUIT)
    wait_for(lambda: pool.process_name(master_2) != "condor_master", 30)
    b.cycle_until(lambda: vm_2 not in {i.csctl_id for i in b.instances()}, 60)
    assert vm_1 in {i.csctl_id for i in b.instances()}, b.story()  # the VM whose startd restarted stays
    b.drain_queue(deadline=300)
    by_fault = {where[vm_2]}
    _, fault = b.check(jobs=2, by_fault=by_fault | {where[vm_1]})
    backoff = json.loads((b.state / "backoff.json").read_text())
    assert backoff["failures"] == {}, backoff  # not the image's fault
    b.table_row(
        "7",
        "a VM's startd killed mid-job (its master restarts it); a busy VM stopped (its HTCondor ends)",
        "kill -9 condor_startd; SIGQUIT to the other VM's master (the local driver: STOPPED)",
        2,
        fault,
        cycles=len(b.cycles),
    )


# -- 7b. HTCondor ends on a VM its cloud still runs ----------------------------------------
def hermes_cloud(ec2) -> str:
    return f"""
[clouds.hermes]
driver = "ec2"
region = "{ec2.region}"
profile = "{ec2.profile}"
endpoint_url = "{ec2.endpoint}"
max_vms = 1
"""


def test_htcondor_ends_on_a_vm_its_cloud_still_runs(bed, condor_pool, ec2, vm_player):
    from testbed.vm_player import ec2_vms

    b = bed(policy="join_timeout_minutes = 1", extra=hermes_cloud(ec2))
    images = f'images = {{ hermes = "{ec2.image_id()}" }}\nflavors = {{ hermes = "t3.micro" }}'
    b.config.write_text(b.config.read_text().replace('images = { local = "host" }', images, 1))
    b.on_cycle = lambda: vm_player.sync(ec2_vms(ec2.client()))

    def running_vms() -> list[str]:
        found = ec2.client().describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        )["Reservations"]
        return [i["InstanceId"] for r in found for i in r["Instances"]]

    b.submit(1, 20)
    b.cycle_until(lambda: len([j for j in b.running() if j.get("MachineAttrCsctlId0")]) == 1, 120)
    [job] = b.running()
    dead = str(job["MachineAttrCsctlId0"])
    # HTCondor on the VM shuts down fast (the job dies with it); the instance keeps running
    master = daemon_pid(condor_pool.paths, "condor_master", f"/var/lib/csctl-testbed/played/{dead}/")
    os.kill(master, signal.SIGQUIT)
    first = len(b.cycles)
    b.cycle_until(lambda: dead not in {i.csctl_id for i in vm_player.played.values()}, 240, pause=3)
    statuses = [c.report["vms"].get("hermes", {}) for c in b.cycles[first:] if c.report]
    assert any("unseen" in s for s in statuses), b.story()  # not never-joined: it joined once
    b.cycle_until(lambda: b.queue_empty() and not running_vms(), 240)
    done = b.history()
    assert [j["JobStatus"] for j in done] == [4], done
    by_csctl, fault = b.killed(by_fault={f"{job['ClusterId']}.{job['ProcId']}"})
    assert by_csctl == [], b.story()
    assert vm_player.played == {} and running_vms() == []
    backoff = json.loads((b.state / "backoff.json").read_text())
    assert backoff["failures"] == {}, backoff  # not the image's fault
    b.table_row(
        "7b",
        "HTCondor ends on a busy VM (EC2, moto + VM player) whose instance keeps running",
        "SIGQUIT to the played VM's master; policy.join_timeout_minutes = 1",
        1,
        fault,
    )
