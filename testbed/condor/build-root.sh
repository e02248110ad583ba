#!/usr/bin/env bash
# Build (once) a Debian trixie chroot with HTCondor for csctl's test pool.
#
# Debian 12 ships no HTCondor; trixie has 23.9. The root is cached: a stamp file
# records a finished build, so a second run returns at once. A build happens in a
# scratch directory and is renamed into place only when complete, so an
# interrupted build never leaves a half-made root that looks finished.
#
# Usage: build-root.sh [DIR]   (default: ${CSCTL_TESTBED_DIR:-/var/cache/csctl-testbed}/root)
# Needs root. Prints the root directory on stdout.
set -euo pipefail

MIRROR=${CSCTL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
# Bump when the recipe below changes, so cached roots get rebuilt.
RECIPE="csctl-testbed-root v1 $SUITE htcondor"

root=${1:-${CSCTL_TESTBED_DIR:-/var/cache/csctl-testbed}/root}
stamp="$root/.csctl-built"

log() { echo "build-root: $*" >&2; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$RECIPE" ]; then
    echo "$root"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { log "must run as root (debootstrap, chroot)"; exit 1; }
# An outdated root may belong to a running pool: never delete under its mounts.
if findmnt -rno TARGET | awk -v r="$root/" 'index($0, r) == 1 { found = 1 } END { exit !found }'; then
    log "$root is in use (mounted); run 'python3 -m testbed.pool down' first"
    exit 1
fi

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi

scratch="$root.building"
# Whatever happens, leave no mount behind (a mounted /proc would block rm -rf).
cleanup() { umount "$scratch/proc" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
rm -rf --one-file-system "$scratch"
mkdir -p "$(dirname "$root")"

log "debootstrap $SUITE into $scratch (about 20 s)"
debootstrap --variant=minbase "$SUITE" "$scratch" "$MIRROR" >&2

# Keep package scripts from starting services inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$scratch/usr/sbin/policy-rc.d"
chmod 755 "$scratch/usr/sbin/policy-rc.d"

log "installing htcondor (about 10 s)"
mount -t proc proc "$scratch/proc"
chroot "$scratch" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends htcondor >&2
chroot "$scratch" apt-get clean
umount "$scratch/proc"

echo "$RECIPE" > "$scratch/.csctl-built"
rm -rf --one-file-system "$root"
mv "$scratch" "$root"
log "done: $root"
echo "$root"
