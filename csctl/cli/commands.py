"""The subcommands: where each lives, and the summary `csctl --help` lists for it."""

from __future__ import annotations

# name -> module under csctl.cli; each module defines a click command named `command`.
SUBCOMMANDS = {
    "accounting": "accounting",
    "boot": "boot",
    "config": "config_cmd",
    "delegate-proxy": "delegate_proxy",
    "demand": "demand",
    "downtime": "downtime",
    "image-test": "image_test",
    "join-check": "join_check",
    "retire": "retire",
    "run": "run",
    "simulate": "simulate",
    "status": "status",
}

# The first sentence of each command's help, so that `csctl --help` lists the commands
# without importing them (delegate-proxy alone pulls in cryptography); pip's command
# table does the same. tests/cli/test_help.py keeps it equal to the commands' own help.
SUMMARIES = {
    "accounting": "Account for what csctl's VMs did: APEL cloud records and a usage report.",
    "boot": "Boot VMs for the idle jobs: one request per cloud and VM type, clouds in parallel.",
    "config": "Inspect csctl's configuration file.",
    "delegate-proxy": "Make an RFC 3820 proxy certificate, as grid-proxy-init does, or delegate one.",
    "demand": "Show which VMs the idle jobs need, minus what is already booting or has room.",
    "downtime": "Declare downtime: keep csctl off a cloud, an image, a VM type, or the whole service.",
    "image-test": "Test an image before production: boot one VM with csctl's real contextualization and "
    "follow it: requested, running in the cloud, joined the pool, probe job matched, probe job "
    "finished, drained, terminated.",
    "join-check": "Join every cloud's csctl VMs with the pool's startds on the csctl id, and classify them: "
    "booting, idle, busy, draining, never-joined (running past policy.join_timeout_minutes without a "
    "startd), error (the cloud says so), stopped, lost (a startd no cloud lists).",
    "retire": "Retire VMs gracefully: drain (no new jobs; running jobs finish), then terminate once a "
    "fresh look at the pool shows no claimed slot.",
    "run": "Run one cycle: join-check --fix, demand, boot, retire, on one look at the pool and one "
    "list call per cloud.",
    "simulate": "Replay a workload through csctl's own decisions, to tune policy before spending cloud "
    "money.",
    "status": "Show the whole service at a glance: each cloud's VMs, quota, backoff and downtime, the "
    "demand, and the last cycle.",
}
