"""The probe job of ``csctl image-test``: the shell script that runs on the VM under test
and reports what it offers, then runs the site's own check."""

from __future__ import annotations

from csctl.model.imagetest import ProbeJob
from csctl.plan.imagetest import probe_submit

PROBE_SCRIPT = r"""#!/bin/sh
# csctl image-test probe: reports what this VM offers, then runs the site's script.
ad="${_CONDOR_MACHINE_AD:-.machine.ad}"
for a in CsctlId TotalCpus TotalMemory TotalDisk DetectedCpus DetectedMemory Arch OpSys \
         OpSysAndVer CondorVersion; do
    echo "ad.$a=$(sed -n "s/^$a = //p" "$ad" 2>/dev/null | head -n 1 | tr -d '"')"
done
echo "os.machine=$(uname -m)"
echo "os.release=$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
echo "os.cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "os.mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "os.disk_kb=$(df -Pk . 2>/dev/null | awk 'NR == 2 {print $4}')"
status=0
if [ -f csctl-site-probe ]; then
    chmod +x csctl-site-probe
    echo "csctl-site-begin"
    ./csctl-site-probe 2>&1 || status=$?
    echo "csctl-site-end"
    echo "site.exit=$status"
fi
exit $status
"""


def probe_job(csctl_id: str, site_script: bytes | None = None, idle_lifetime: int = 900) -> ProbeJob:
    """The probe job for the VM ``csctl_id``, shipping ``site_script`` if one is given; the
    schedd removes it once idle for ``idle_lifetime`` seconds (csctl died meanwhile)."""
    return ProbeJob(csctl_id, PROBE_SCRIPT, probe_submit(csctl_id, idle_lifetime), site_script)
