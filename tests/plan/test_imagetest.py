"""`csctl image-test`'s decisions, without a pool or a cloud: exit codes, specs, the
probe's output and verdicts, redaction and the JSON report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from csctl.config import VMTypeConfig, parse_config
from csctl.errors import InputError
from csctl.model import StartdSlot
from csctl.model.imagetest import ProbeStatus
from csctl.plan.imagetest import (
    IMAGE_TYPE,
    MISMATCH_EXIT,
    SCHEMA,
    Check,
    ImageTestReport,
    ImageTestResults,
    ImageTestSpec,
    Phase,
    PhaseState,
    Probe,
    compare,
    drained,
    image_test_specs,
    overall_exit_code,
    parse_probe,
    probe_config,
    probe_done,
    probe_failure,
    probe_started,
    probe_submit,
    probe_trouble,
    redact,
)

CONFIG = """
[pool]
name = "pool.test"
collector = "127.0.0.1"
vm_config = "STARTD_NOCLAIM_SHUTDOWN = 1200"
[clouds.A]
driver = "local"
[clouds.B]
driver = "local"
[vm_types.big]
cpus = 4
memory = 8000
disk = 20
condor_version = "23.9.0"
images = { A = "img-a" }
flavors = { A = "m1.large" }
[vm_types.small]
cpus = 1
memory = 2000
disk = 10
images = { A = "img-small", B = "img-b" }
"""
SPEC = ImageTestSpec("big", "A", "big", "img-a", "m1.large")
# what the probe script prints on a VM of type "big" that keeps every promise
GOOD_OUTPUT = """\
ad.CsctlId=a-1234abcd-0
ad.TotalCpus=4
ad.TotalMemory=8000
ad.TotalDisk=20971520
ad.DetectedCpus=4
ad.DetectedMemory=8192
ad.Arch=X86_64
ad.OpSys=LINUX
ad.OpSysAndVer=AlmaLinux9
ad.CondorVersion=$CondorVersion: 23.10.2 2024-09-03 BuildID: 123 $
os.machine=x86_64
os.release=AlmaLinux 9.4 (Seafoam Ocelot)
os.cpus=4
os.mem_kb=8388608
os.disk_kb=20971520
"""


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG)


def report(*states: PhaseState, checks: list[Check] | None = None) -> ImageTestReport:
    r = ImageTestReport.start(SPEC)
    for result, state in zip(r.phases, states, strict=False):
        result.state = state
    r.checks = checks or []
    return r


PASSED = [PhaseState.PASSED] * 7
MISMATCH = Check("cpus", 4, 2, 2, False, "the startd advertises 2")


# -- phases and exit codes ----------------------------------------------------------------


def test_phases_are_numbered_in_order_and_fail_with_ten_plus_their_number():
    assert [(p.label, p.exit_code) for p in Phase] == [
        ("requested", 11),
        ("running in the cloud", 12),
        ("joined the pool", 13),
        ("probe job matched", 14),
        ("probe job finished", 15),
        ("drained", 16),
        ("terminated", 17),
    ]


def test_a_report_exits_with_its_failed_phase_a_mismatch_or_interruption():
    assert report(*PASSED).exit_code == 0
    assert report(*PASSED, checks=[MISMATCH]).exit_code == MISMATCH_EXIT == 18
    failed = report(PhaseState.PASSED, PhaseState.PASSED, PhaseState.FAILED)
    assert (failed.failed_phase, failed.exit_code) == (Phase.JOINED, 13)
    # a failed phase outranks a mismatch found before it
    assert report(*PASSED[:4], PhaseState.FAILED, checks=[MISMATCH]).exit_code == 15
    interrupted = report(PhaseState.PASSED, PhaseState.FAILED)
    interrupted.interrupted = True
    assert interrupted.exit_code == 130


def test_the_overall_exit_code_is_the_earliest_failure_unless_interrupted():
    joined, finished = report(*PASSED[:2], PhaseState.FAILED), report(*PASSED[:4], PhaseState.FAILED)
    assert overall_exit_code([report(*PASSED), finished, joined]) == 13
    assert overall_exit_code([report(*PASSED, checks=[MISMATCH]), finished]) == 15
    assert overall_exit_code([report(*PASSED), report(*PASSED)]) == 0
    assert overall_exit_code([]) == 0
    stopped = report(PhaseState.FAILED)
    stopped.interrupted = True
    assert overall_exit_code([joined, stopped]) == 130


def test_pending_phases_are_skipped_and_kept_ones_say_why():
    r = report(*PASSED[:5])
    r.skip_pending(kept=True)
    assert [(p.state, p.detail) for p in r.phases[4:]] == [
        (PhaseState.PASSED, ""),
        (PhaseState.SKIPPED, "kept (--keep)"),
        (PhaseState.SKIPPED, "kept (--keep)"),
    ]
    r = report(PhaseState.FAILED)
    r.skip_pending(kept=False)
    assert [p.state for p in r.phases] == [PhaseState.FAILED] + [PhaseState.SKIPPED] * 6
    assert {p.detail for p in r.phases[1:]} == {""}


def test_the_json_report_names_phases_and_carries_every_exit_code():
    failed = report(*PASSED[:4], PhaseState.FAILED)
    failed.phase(Phase.FINISHED).detail, failed.phase(Phase.FINISHED).seconds = (
        "the probe script exited with 1",
        3.5,
    )
    failed.csctl_id, failed.probe = "a-1234abcd-0", parse_probe(GOOD_OUTPUT, 0)
    data = json.loads(json.dumps(ImageTestResults([report(*PASSED), failed]).as_dict()))
    assert (data["schema"], data["exit_code"]) == (SCHEMA, 15) == ("csctl.imagetest/1", 15)
    ok, bad = data["results"]
    assert (ok["exit_code"], ok["failed_phase"], ok["schema"]) == (0, None, SCHEMA)
    assert bad["phases"][4] == {
        "phase": "finished",
        "label": "probe job finished",
        "state": "failed",
        "seconds": 3.5,
        "detail": "the probe script exited with 1",
    }
    assert [p["phase"] for p in bad["phases"]] == [p.name.lower() for p in Phase]
    assert (bad["exit_code"], bad["failed_phase"], bad["csctl_id"]) == (15, "finished", "a-1234abcd-0")
    assert (bad["label"], bad["cloud"], bad["image"], bad["flavor"]) == ("big", "A", "img-a", "m1.large")
    assert bad["probe"]["values"]["ad.TotalCpus"] == "4" and bad["kept"] is False


# -- what to test -------------------------------------------------------------------------


def test_specs_for_types_keep_their_order_once_each(config):
    assert image_test_specs(config, "A", ["small", "big", "small"], None, None) == [
        ImageTestSpec("small", "A", "small", "img-small", None),
        SPEC,
    ]


def test_a_spec_for_an_image_promises_nothing(config):
    assert image_test_specs(config, "B", [], "img-new", "m1.tiny") == [
        ImageTestSpec("img-new", "B", IMAGE_TYPE, "img-new", "m1.tiny", promised=False)
    ]


@pytest.mark.parametrize(
    ("cloud", "types", "image", "flavor", "message"),
    [
        ("C", ["big"], None, None, 'unknown cloud "C" (known: A, B)'),
        ("A", ["tiny"], None, None, 'unknown VM type "tiny" (known: big, small)'),
        ("B", ["big"], None, None, 'VM type "big" has no image on cloud "B" (vm_types.big.images)'),
        ("A", ["big"], "i", None, "give either --type or --image with --flavor, not both"),
        ("A", [], "img", None, "--image and --flavor go together: give both"),
        ("A", [], None, "m1", "--image and --flavor go together: give both"),
        ("A", [], None, None, "give --type TYPE (repeatable) or --image IMAGE --flavor FLAVOR"),
    ],
)
def test_specs_that_make_no_sense_are_one_line_errors(config, cloud, types, image, flavor, message):
    with pytest.raises(InputError) as caught:
        image_test_specs(config, cloud, types, image, flavor)
    assert caught.value.message == message


def test_the_test_vm_admits_only_its_probe_job(config):
    tested = probe_config(config, SPEC, "a-1234abcd-0")
    assert tested.pool.vm_config.splitlines() == [
        "STARTD_NOCLAIM_SHUTDOWN = 1200",
        "# csctl image-test: only the probe job may run on a-1234abcd-0",
        'CsctlImageTest = "a-1234abcd-0"',
        "STARTD_ATTRS = $(STARTD_ATTRS) CsctlImageTest",
        'START = ($(START)) && (TARGET.CsctlImageTest =?= "a-1234abcd-0")',
    ]
    assert tested.vm_types == config.vm_types and config.pool.vm_config == "STARTD_NOCLAIM_SHUTDOWN = 1200"


def test_an_image_test_vm_advertises_a_minimal_type(config):
    (spec,) = image_test_specs(config, "A", [], "img-new", "m1.tiny")
    minimal = probe_config(config, spec, "a-1-0").vm_types[IMAGE_TYPE]
    assert (minimal.cpus, minimal.memory, minimal.disk) == (1, 512, 1)
    assert IMAGE_TYPE not in config.vm_types


# -- the probe ----------------------------------------------------------------------------


def test_the_probe_job_runs_only_on_its_vm_and_leaves_if_never_matched():
    submit = probe_submit("a-1234abcd-0", idle_lifetime=900)
    assert submit["requirements"] == (
        'TARGET.CsctlId == "a-1234abcd-0" && TARGET.Arch =!= undefined && TARGET.OpSys =!= undefined'
    )
    assert submit["MY.CsctlImageTest"] == '"a-1234abcd-0"'
    assert submit["periodic_remove"] == "JobStatus == 1 && time() - QDate > 900"
    assert (submit["request_cpus"], submit["request_memory"], submit["request_disk"]) == ("1", "64", "1024")
    assert submit["batch_name"] == "csctl-image-test-a-1234abcd-0"


def test_parse_probe_reads_values_and_the_site_block():
    text = GOOD_OUTPUT + "csctl-site-begin\ncvmfs: ok=mounted\nfrontier: down\ncsctl-site-end\nsite.exit=3\n"
    probe = parse_probe(text, 3)
    assert probe.values["ad.TotalMemory"] == "8000" and probe.values["os.machine"] == "x86_64"
    assert probe.values["ad.CondorVersion"] == "$CondorVersion: 23.10.2 2024-09-03 BuildID: 123 $"
    assert "cvmfs: ok" not in probe.values  # a line of the site's output is not a value
    assert (probe.site_output, probe.site_exit, probe.exit_code) == (
        "cvmfs: ok=mounted\nfrontier: down",
        3,
        3,
    )


def test_parse_probe_without_a_site_script_and_with_long_site_output():
    assert parse_probe(GOOD_OUTPUT, 0) == Probe(parse_probe(GOOD_OUTPUT, 0).values, 0, None, None)
    lines = [f"line {n}" for n in range(100)]
    probe = parse_probe("csctl-site-begin\n" + "\n".join(lines) + "\ncsctl-site-end\nsite.exit=0\n", 0)
    assert probe.site_output == "\n".join(lines[-40:]) and probe.site_exit == 0


def test_a_vm_that_keeps_every_promise_passes_each_check():
    vm_type = VMTypeConfig.model_validate(
        {"cpus": 4, "memory": 8000, "disk": 20, "condor_version": "23.9.0", "images": {}}
    )
    checks = compare(vm_type, parse_probe(GOOD_OUTPUT, 0))
    assert [(c.resource, c.promised, c.advertised, c.detected, c.ok, c.note) for c in checks] == [
        ("cpus", 4, 4, 4, True, ""),
        ("memory MB", 8000, 8000, 8192, True, ""),
        ("disk GB", 20, 20.0, 20.0, True, ""),
        ("arch", "X86_64", "X86_64", "x86_64", True, ""),
        ("opsys", "LINUX", "LINUX", "AlmaLinux 9.4 (Seafoam Ocelot)", True, ""),
        ("HTCondor", "23.9.0", "23.10.2", None, True, ""),
    ]


def test_a_vm_short_of_its_promises_fails_those_checks_and_says_why():
    vm_type = VMTypeConfig.model_validate(
        {"cpus": 8, "memory": 8000, "disk": 30, "arch": "AARCH64", "condor_version": "24.0.0", "images": {}}
    )
    short = (
        GOOD_OUTPUT.replace("ad.TotalMemory=8000", "ad.TotalMemory=7800")
        .replace("ad.DetectedMemory=8192\n", "")
        .replace("os.mem_kb=8388608", "os.mem_kb=7400000")
    )
    checks = {c.resource: c for c in compare(vm_type, parse_probe(short, 0))}
    assert (checks["cpus"].ok, checks["cpus"].note) == (False, "the startd advertises 4; the VM has only 4")
    # memory: the startd must advertise exactly the promise; detection (here from the OS) within 10%
    assert (checks["memory MB"].detected, checks["memory MB"].note) == (7226, "the startd advertises 7800")
    assert (checks["disk GB"].ok, checks["disk GB"].note) == (
        False,
        "the startd advertises 20.0; the VM has only 20.0",
    )
    assert (checks["arch"].ok, checks["arch"].note) == (False, "the startd advertises X86_64")
    assert (checks["HTCondor"].ok, checks["HTCondor"].note) == (False, "older than the type's condor_version")
    assert checks["opsys"].ok is True


def test_without_a_type_nothing_is_judged_and_missing_values_are_none():
    checks = compare(None, parse_probe("ad.TotalCpus=2\nos.cpus=2\nos.mem_kb=garbage\n", 0))
    assert {c.ok for c in checks} == {None} and {c.note for c in checks} == {""}
    assert [(c.resource, c.advertised, c.detected) for c in checks] == [
        ("cpus", 2, 2),
        ("memory MB", None, None),
        ("disk GB", None, None),
        ("arch", None, None),
        ("opsys", None, None),
        ("HTCondor", None, None),
    ]


def test_a_type_whose_startd_advertises_nothing_fails_as_not_advertised():
    vm_type = VMTypeConfig.model_validate({"cpus": 2, "memory": 1000, "disk": 1, "images": {}})
    checks = {c.resource: c for c in compare(vm_type, parse_probe("os.cpus=2\n", 0))}
    assert (checks["cpus"].ok, checks["cpus"].note) == (False, "not advertised")
    assert (checks["HTCondor"].ok, checks["HTCondor"].note) == (False, "not advertised")
    assert checks["arch"].note == "the startd advertises nothing"


def test_probe_status_verdicts():
    assert probe_trouble(ProbeStatus(None)) == "the probe job left the queue (removed)"
    assert probe_trouble(ProbeStatus(3)) == "the probe job left the queue (removed)"
    assert probe_trouble(ProbeStatus(5, hold_reason="Spooling input data files", hold_code=16)) is None
    held = ProbeStatus(5, hold_reason="Failed to transfer files", hold_code=13)
    assert probe_trouble(held) == "the probe job is held: Failed to transfer files"
    assert probe_trouble(ProbeStatus(5)) == "the probe job is held: no reason given"
    assert [probe_trouble(ProbeStatus(code)) for code in (1, 2, 4, 6, 7)] == [None] * 5
    assert [probe_started(ProbeStatus(code)) for code in range(1, 8)] == [
        False, True, False, True, False, True, True,
    ]  # fmt: skip
    assert [code for code in range(1, 8) if probe_done(ProbeStatus(code))] == [4]


def test_a_completed_probe_fails_the_test_for_a_signal_a_bad_exit_or_the_wrong_vm():
    good, vm = parse_probe(GOOD_OUTPUT, 0), "a-1234abcd-0"
    assert probe_failure(ProbeStatus(4, exit_code=0), good, vm) is None
    assert probe_failure(ProbeStatus(4, exit_signal=9), good, vm) == "the probe job was killed by signal 9"
    site = parse_probe(GOOD_OUTPUT + "csctl-site-begin\ncsctl-site-end\nsite.exit=2\n", 2)
    assert probe_failure(ProbeStatus(4, exit_code=2), site, vm) == "the probe script exited with 2"
    assert probe_failure(ProbeStatus(4, exit_code=1), good, vm) == "the probe job exited with 1"
    assert probe_failure(ProbeStatus(4, exit_code=0), good, "b-0-0") == "the probe ran on a-1234abcd-0"
    nowhere = parse_probe("ad.CsctlId=\n", 0)
    assert probe_failure(ProbeStatus(4, exit_code=0), nowhere, vm) == "the probe ran on an unknown machine"


def test_redact_removes_tokens_and_the_given_secrets():
    token = "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJzdWIiOiJ2bSJ9.c2lnbmF0dXJl"
    text = f"token {token} key s3cr3t+/= again s3cr3t+/=\nplain line"
    assert redact(text, ["s3cr3t+/=", ""]) == "token <redacted> key <redacted> again <redacted>\nplain line"
    assert redact(f"[{token}]") == "[<redacted>]"
    assert redact("nothing secret here", ["", ""]) == "nothing secret here"


def slot(state: str = "Unclaimed", **kw: object) -> StartdSlot:
    fields: dict = {"slot_type": "Partitionable", "activity": "Idle", "cpus": 1, "memory": 1, "disk_kb": 1}
    return StartdSlot("slot1@vm", "vm", "a-1-0", "big", "A", state=state, **{**fields, **kw})


def test_a_vm_has_drained_once_no_claim_is_left_and_its_startd_drains_or_left():
    assert drained([]) is True
    assert drained([slot(draining=True)]) is True
    assert drained([slot("Drained")]) is True
    assert drained([slot()]) is False  # not yet told to drain, or the ad is old
    assert drained([slot(draining=True, dynamic_slots=1)]) is False
    assert drained([slot(draining=True), slot("Claimed", slot_type="Dynamic")]) is False


def test_importing_the_image_test_planner_loads_no_adapter_or_sdk():
    # tests/plan/test_imports.py checks every module's imports; this loads the package
    code = (
        "import sys, csctl.plan.imagetest\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'openstack', 'htcondor', 'htcondor2', 'click', 'rich')"
        " or m.startswith(('csctl.engine', 'csctl.clouds', 'csctl.pool', 'csctl.cli', 'csctl.context')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
