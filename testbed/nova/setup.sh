#!/usr/bin/env bash
# Build the virtual environment that runs the Nova test-bed server (server.py).
#
# Nova is ~400 MB and pins its own versions of half of PyPI, so it lives in its own venv
# at ${CSCTL_TESTBED_DIR:-/var/cache/csctl-testbed}/nova-venv, never in the project's.
# Idempotent and cached: a stamp records what was installed, so a second run is instant;
# changing the pins below (or the python) rebuilds. Concurrent runs wait on a lock.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
TESTBED_DIR="${CSCTL_TESTBED_DIR:-/var/cache/csctl-testbed}"
VENV="$TESTBED_DIR/nova-venv"
STAMP="$VENV/.csctl-testbed-stamp"

# Verified together on Python 3.11. nova's functional-test harness (nova/tests, shipped in
# the wheel) also needs the test-only packages on the second line, which nova's wheel
# does not declare.
PINS=(
  nova==34.0.0 openstack-placement==16.0.0 SQLAlchemy==2.0.58
  testtools==2.9.1 oslotest==6.1.1 wsgi-intercept==1.13.1 testresources==2.1.2 testscenarios==0.7.0
)

want="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${PINS[*]}"

mkdir -p "$TESTBED_DIR"
exec 9>"$TESTBED_DIR/nova-venv.lock"
flock 9

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi

echo "csctl testbed: building the nova venv in $VENV (about a minute)" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
# Fail now rather than at server start if the harness cannot be imported.
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 "$VENV/bin/python" -W ignore -c \
  'import nova.tests.functional, nova.tests.functional.integrated_helpers'
echo "$want" >"$STAMP"
