#!/bin/sh
# Runs once on the VM (cloud-init runcmd): names the VM after its launch index in the
# boot batch, then (re)starts HTCondor. CSCTL_LAUNCH_INDEX, CSCTL_CONDOR_ETC and
# CSCTL_NO_START let csctl's local driver run the very same script.
set -eu
etc="${CSCTL_CONDOR_ETC:-/etc/condor}"
index="${CSCTL_LAUNCH_INDEX:-}"
fetch() {
    curl -sf --max-time 5 "$1" 2>/dev/null || wget -q -T 5 -O - "$1" 2>/dev/null || true
}
if [ -z "$index" ]; then
    case "@METADATA@" in
        ec2) index=$(fetch http://169.254.169.254/latest/meta-data/ami-launch-index) ;;
        openstack) index=$(fetch http://169.254.169.254/openstack/latest/meta_data.json |
                           sed -n 's/.*"launch_index": *\([0-9][0-9]*\).*/\1/p') ;;
    esac
fi
if [ -z "$index" ] && [ "@METADATA@" = none ]; then
    index=0  # no metadata service and no index given: a batch of one
fi
case "$index" in ''|*[!0-9]*)
    # guessing would give two VMs of the batch one id: never join; join-check --fix
    # terminates this VM after the join timeout, with this console saved
    echo "csctl: cannot read this VM's launch index from the @METADATA@ metadata service;" \
         "HTCondor stopped" >&2
    [ -n "${CSCTL_NO_START:-}" ] || systemctl stop condor 2>/dev/null || service condor stop || true
    exit 1 ;;
esac
umask 022
printf 'CsctlId = "%s-%s"\n' "@BATCH@" "$index" > "$etc/config.d/51-csctl-id.conf"
if [ -z "${CSCTL_NO_START:-}" ]; then
    systemctl restart condor 2>/dev/null || service condor restart
fi
