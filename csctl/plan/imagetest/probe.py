"""The probe job, decided: what it asks the schedd for, how its output reads, how its
status and result judge the test, and what a VM type's promises are measured against."""

from __future__ import annotations

import re
from collections.abc import Sequence

from csctl.config import VMTypeConfig
from csctl.model.imagetest import ProbeStatus
from csctl.plan import attributes as A
from csctl.plan.imagetest.report import Check, Probe
from csctl.plan.queue import IDLE

PROBE_ATTR = A.CSCTL_IMAGE_TEST  # on the test VM's startd and on its probe job
# JobStatus codes (IDLE is 1)
RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING, SUSPENDED = 2, 3, 4, 5, 6, 7
SPOOLING_HOLD_CODE = 16  # held until its input files are spooled: not a failure
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def probe_submit(csctl_id: str, idle_lifetime: int) -> dict[str, str]:
    """Submit commands of the probe job for one VM, without the file names the queue adds:
    it runs there only (its csctl id), asks for little, and the schedd removes it if it
    is still idle after ``idle_lifetime`` seconds (csctl died)."""
    return {
        "universe": "vanilla",
        # naming Arch and OpSys keeps submit from adding the submit host's own
        "requirements": (
            f'TARGET.{A.CSCTL_ID} == "{csctl_id}" && TARGET.Arch =!= undefined && TARGET.OpSys =!= undefined'
        ),
        "request_cpus": "1",
        "request_memory": "64",
        "request_disk": "1024",
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        f"MY.{PROBE_ATTR}": f'"{csctl_id}"',
        "batch_name": f"csctl-image-test-{csctl_id}",
        "periodic_remove": f"JobStatus == {IDLE} && time() - QDate > {idle_lifetime}",
        "notification": "never",
    }


def probe_trouble(status: ProbeStatus) -> str | None:
    """Why the probe job can no longer run, or None while it still may."""
    if status.code is None or status.code == REMOVED:
        return "the probe job left the queue (removed)"
    if status.code == HELD and status.hold_code != SPOOLING_HOLD_CODE:
        return f"the probe job is held: {status.hold_reason or 'no reason given'}"
    return None


def probe_started(status: ProbeStatus) -> bool:
    """Whether the probe job has matched (it runs, ran, or moves its files)."""
    return status.code in (RUNNING, COMPLETED, TRANSFERRING, SUSPENDED)


def probe_done(status: ProbeStatus) -> bool:
    """Whether the probe job has completed."""
    return status.code == COMPLETED


def probe_failure(status: ProbeStatus, probe: Probe, csctl_id: str) -> str | None:
    """Why a completed probe job fails the test, or None when it passed."""
    if status.exit_signal is not None:
        return f"the probe job was killed by signal {status.exit_signal}"
    if probe.site_exit:
        return f"the probe script exited with {probe.site_exit}"
    if status.exit_code:
        return f"the probe job exited with {status.exit_code}"
    ran_on = probe.values.get("ad.CsctlId")
    if ran_on != csctl_id:
        return f"the probe ran on {ran_on or 'an unknown machine'}"
    return None


def parse_probe(text: str, exit_code: int | None) -> Probe:
    """Read the probe's output: ``key=value`` lines and the site script's block."""
    values: dict[str, str] = {}
    site: list[str] | None = None
    in_site = False
    for line in text.splitlines():
        if line == "csctl-site-begin":
            in_site, site = True, []
        elif line == "csctl-site-end":
            in_site = False
        elif in_site and site is not None:
            site.append(line)
        elif "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    site_exit = _int(values.get("site.exit"))
    site_output = "\n".join(site[-40:]) if site is not None else None
    return Probe(values, exit_code, site_output, site_exit)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without IDTOKENs (any JWT) and without the given secret strings."""
    text = _JWT.sub("<redacted>", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _version(value: str | None) -> tuple[int, ...] | None:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", value or "")
    return tuple(int(x) for x in found.groups()) if found else None


def compare(vm_type: VMTypeConfig | None, probe: Probe) -> list[Check]:
    """Each resource the type promises against what the startd advertises and what the VM
    has (HTCondor's own detection, else the OS). Advertised values must equal the promise
    (disk: at least 90%); detected ones must reach it (memory: within 10%, the kernel keeps
    some). Without a type (``--image``) nothing is judged."""
    v = probe.values
    t = vm_type
    det_mem = _int(v.get("ad.DetectedMemory"))
    os_mem = _int(v.get("os.mem_kb"))
    if det_mem is None and os_mem is not None:
        det_mem = os_mem // 1024
    return [
        _at_least(
            "cpus",
            t.cpus if t else None,
            _int(v.get("ad.TotalCpus")),
            _int(v.get("ad.DetectedCpus")) or _int(v.get("os.cpus")),
            exact=True,
        ),
        _at_least(
            "memory MB",
            t.memory if t else None,
            _int(v.get("ad.TotalMemory")),
            det_mem,
            exact=True,
            slack=0.9,
        ),
        _at_least(
            "disk GB", t.disk if t else None, _gb(v.get("ad.TotalDisk")), _gb(v.get("os.disk_kb")), slack=0.9
        ),
        _same("arch", t.arch if t else None, v.get("ad.Arch"), v.get("os.machine")),
        _same("opsys", t.opsys if t else None, v.get("ad.OpSys"), v.get("os.release")),
        _condor_version(t, v.get("ad.CondorVersion")),
    ]


def _gb(kib: str | None) -> float | None:
    value = _int(kib)
    return None if value is None else round(value / (1024 * 1024), 1)


def _at_least(
    name: str,
    promised: int | None,
    advertised: float | None,
    detected: float | None,
    exact: bool = False,
    slack: float = 1.0,
) -> Check:
    check = Check(name, promised or None, advertised, detected, None)
    if not promised:
        return check
    notes = []
    if advertised is None:
        notes.append("not advertised")
    elif (exact and advertised != promised) or advertised < promised * slack:
        notes.append(f"the startd advertises {advertised}")
    if detected is not None and detected < promised * slack:
        notes.append(f"the VM has only {detected}")
    check.ok, check.note = not notes, "; ".join(notes)
    return check


def _same(name: str, promised: str | None, advertised: str | None, detected: str | None) -> Check:
    check = Check(name, promised or None, advertised or None, detected or None, None)
    if promised:
        check.ok = (advertised or "").lower() == promised.lower()
        check.note = "" if check.ok else f"the startd advertises {advertised or 'nothing'}"
    return check


def _condor_version(vm_type: VMTypeConfig | None, advertised: str | None) -> Check:
    seen = _version(advertised)
    check = Check(
        "HTCondor",
        vm_type.condor_version if vm_type else None,
        ".".join(map(str, seen)) if seen else None,
        None,
        None,
    )
    if vm_type is not None:
        promised = _version(vm_type.condor_version)
        check.ok = seen is not None and promised is not None and seen >= promised
        if not check.ok:  # demand would boot this type for jobs its HTCondor cannot serve
            check.note = "older than the type's condor_version" if seen else "not advertised"
    return check
