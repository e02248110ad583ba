"""``csctl image-test``, decided: its phases and exit codes, what to test, the probe job's
submit commands and how its output judges the VM. Nothing here acts; the engine
(``csctl/engine/imagetest/``) boots, waits and cleans up."""

from csctl.plan.imagetest.probe import (
    PROBE_ATTR,
    compare,
    parse_probe,
    probe_done,
    probe_failure,
    probe_started,
    probe_submit,
    probe_trouble,
    redact,
)
from csctl.plan.imagetest.report import (
    MISMATCH_EXIT,
    SCHEMA,
    Check,
    ImageTestReport,
    ImageTestResults,
    ImageTestSpec,
    Phase,
    PhaseEvent,
    PhaseResult,
    PhaseState,
    Probe,
    Timeouts,
    overall_exit_code,
)
from csctl.plan.imagetest.specs import IMAGE_TYPE, drained, image_test_specs, probe_config

__all__ = [
    "IMAGE_TYPE",
    "MISMATCH_EXIT",
    "PROBE_ATTR",
    "SCHEMA",
    "Check",
    "ImageTestReport",
    "ImageTestResults",
    "ImageTestSpec",
    "Phase",
    "PhaseEvent",
    "PhaseResult",
    "PhaseState",
    "Probe",
    "Timeouts",
    "compare",
    "drained",
    "image_test_specs",
    "overall_exit_code",
    "parse_probe",
    "probe_config",
    "probe_done",
    "probe_failure",
    "probe_started",
    "probe_submit",
    "probe_trouble",
    "redact",
]
