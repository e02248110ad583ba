"""Serve a real Nova compute API on a loopback port, built from nova's functional-test harness.

Runs under the nova venv's python (see setup.sh), never under the project's python.

Nova's own functional tests wire a complete in-process cloud: sqlite databases with
cell0/cell1, fake oslo.messaging, conductor, scheduler, a compute service with the fake
virt driver, a placement service and glance/neutron/cinder fakes. We reuse that harness
(one `_IntegratedTestBase` test case whose test body is "serve until told to stop") and
put the same WSGI application nova tests use behind a real HTTP socket. Adjustments, each
explained where made: asynchronous RPC casts, a sized and slightly slow fake hypervisor,
ports owned by the booting project, and a cell lock that survives concurrent requests.

Keystone is stubbed: every request is given an identity by a small middleware, so
openstacksdk can talk to it with ``auth_type="none"`` and an endpoint override:

* ``http://127.0.0.1:PORT/v2.1/PROJECT``        member of PROJECT (a hex id)
* ``http://127.0.0.1:PORT/admin/v2.1/PROJECT``  admin (role admin) scoped to PROJECT
* ``http://127.0.0.1:PORT/v2.1``                member of the default project

Prints ``READY <endpoint>`` (the default project's member endpoint) once the API answers,
then serves until SIGTERM/SIGINT and tears everything down.
"""

import os

# Native threads instead of eventlet: a plain threading HTTP server can then serve the
# app. Must be set before anything imports nova.
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import faulthandler  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socketserver  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402
import urllib.request  # noqa: E402
from wsgiref import simple_server  # noqa: E402

DEFAULT_PROJECT = "6f70656e737461636b20342065766572"  # nova's functional-test project
MEMBER_USER = "csctl"
ADMIN_PREFIX = "/admin"
# Nova only routes hex project ids in URLs (see nova.api.openstack.ProjectMapper).
_PROJECT_IN_PATH = re.compile(r"^/v2(?:\.1)?/([0-9a-f-]+)(?:/|$)")

LOG = logging.getLogger("csctl.testbed.nova")


def parse_args(argv=None):
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    p.add_argument("--host-vcpus", type=int, default=16, help="vCPUs of the fake hypervisor")
    p.add_argument("--host-ram-mb", type=int, default=32768, help="RAM of the fake hypervisor")
    p.add_argument("--host-disk-gb", type=int, default=1000, help="disk of the fake hypervisor")
    p.add_argument(
        "--spawn-delay",
        type=float,
        default=0.5,
        help="seconds the fake driver takes to spawn a VM (keeps servers in BUILD a while)",
    )
    p.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes (the parent died or closed the pipe)",
    )
    p.add_argument("--log-level", default="WARNING", help="nova log level written to stderr")
    return p.parse_args(argv)


def identity_middleware(app):
    """Wrap the nova WSGI app so each request carries the stubbed-keystone identity.

    nova's stubbed keystone context (OSAPIFixture._stub_keystone) reads X-Auth-User,
    X-Auth-Project-Id and X-Roles; user "admin" is an admin. Requests that already set
    these headers keep them; otherwise they come from the URL as described above.
    """

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        admin = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        if admin:
            # Moving the prefix into SCRIPT_NAME keeps nova's generated links on /admin.
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + ADMIN_PREFIX
            path = path[len(ADMIN_PREFIX) :] or "/"
            environ["PATH_INFO"] = path
        match = _PROJECT_IN_PATH.match(path)
        project = match.group(1) if match else DEFAULT_PROJECT
        environ.setdefault("HTTP_X_AUTH_USER", "admin" if admin else MEMBER_USER)
        environ.setdefault("HTTP_X_AUTH_PROJECT_ID", project)
        environ.setdefault("HTTP_X_ROLES", "reader,member,admin" if admin else "reader,member")
        return app(environ, start_response)

    return wrapped


class ReaderPreferringLock:
    """Reentrant readers-writer lock whose readers never queue behind waiting writers.

    Replaces the writer-preferring lock of nova's CellDatabases fixture, which fakes
    cell switching with one global "current cell" guarded by that lock. Functional tests
    barely run concurrently; a served API does, and there a reader holding a database
    write lock can wait behind a queued writer that waits for another reader, which waits
    for that database lock: a deadlock (seen with 8 concurrent boots). Writers only hold
    the lock for a pointer swap, so letting readers through cannot starve them for long.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = collections.Counter()  # thread id -> read depth
        self._writer = None
        self._write_depth = 0

    @contextlib.contextmanager
    def read_lock(self):
        """Hold a shared lock; waits only while another thread holds the write lock."""
        me = threading.get_ident()
        with self._cond:
            while self._writer not in (None, me):
                self._cond.wait()
            self._readers[me] += 1
        try:
            yield self
        finally:
            with self._cond:
                self._readers[me] -= 1
                if not self._readers[me]:
                    del self._readers[me]
                self._cond.notify_all()

    @contextlib.contextmanager
    def write_lock(self):
        """Hold the exclusive lock; as in fasteners, a reader may not upgrade."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                if me in self._readers:
                    raise RuntimeError("reader to writer privilege escalation not allowed")
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer = me
            self._write_depth += 1
        try:
            yield self
        finally:
            with self._cond:
                self._write_depth -= 1
                if not self._write_depth:
                    self._writer = None
                    self._cond.notify_all()


class _QuietHandler(simple_server.WSGIRequestHandler):
    """Request handler that logs through logging (debug) instead of stderr."""

    def log_message(self, format, *args):  # noqa: A002 - signature from BaseHTTPRequestHandler
        LOG.debug("%s " + format, self.address_string(), *args)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """wsgiref server with one thread per request, like a real API worker pool."""

    daemon_threads = True
    allow_reuse_address = True


def _make_bed_class():
    """Build the nova test case class lazily: importing it pulls in all of nova."""
    # nova.tests.functional chooses the concurrency mode (threads, per the environment
    # variable above) on import; it must run before the fixtures pull in oslo.service.
    import nova.tests.functional  # noqa: F401
    from nova.tests import fixtures as nova_fixtures
    from nova.tests.functional import integrated_helpers

    class NovaBed(integrated_helpers._IntegratedTestBase):
        """One nova functional test whose body serves the API over HTTP until stopped."""

        # Real clouds cast RPCs asynchronously: servers go BUILD -> ACTIVE after the
        # POST returns, instead of the harness' default of making casts synchronous.
        CAST_AS_CALL = False

        def __init__(self, options, on_ready, stop_event):
            super().__init__("runTest")
            self.options = options
            self.on_ready = on_ready  # called with the endpoint once the API answers
            self.stop_event = stop_event  # set to end the test, i.e. stop serving

        def setUp(self):
            self._shape_fake_host()
            # Must be in place before the harness builds its CellDatabases fixture.
            self.useFixture(cell_lock_patch())
            # Services must never look "down" however long the bed runs (the heartbeat
            # timer is not what we are testing).
            self.useFixture(nova_fixtures.ConfPatcher(service_down_time=10**7))
            # The harness expects a source checkout; the wheel installs the paste
            # pipeline as data under the venv's prefix instead.
            self.flags(api_paste_config=_paste_config(), group="wsgi")
            super().setUp()
            self._ports_owned_by_requester()

        def _ports_owned_by_requester(self):
            """Make the fake neutron give a new port the project nova asked for.

            The fixture stamps every port with its own fixed project, so in any other
            project nova finds no ports for its instances and shows empty addresses.
            """
            neutron = self.neutron
            real_create_port = neutron.create_port

            def create_port(body=None):
                created = real_create_port(body)
                owner = ((body or {}).get("port") or {}).get("tenant_id")
                if owner:
                    port_id = created["port"]["id"]
                    for port in (created["port"], neutron._ports[port_id]):
                        port.update(tenant_id=owner, project_id=owner)
                return created

            neutron.create_port = create_port

        def _shape_fake_host(self):
            """Size the fake hypervisor and slow its spawn a little, like a real one."""
            from nova.virt import fake

            opts = self.options
            self.flags(compute_driver="fake.FakeDriver")
            for attr, value in (
                ("vcpus", opts.host_vcpus),
                ("memory_mb", opts.host_ram_mb),
                ("local_gb", opts.host_disk_gb),
            ):
                self.useFixture(_attr_patch(fake.FakeDriver, attr, value))
            real_spawn = fake.FakeDriver.spawn
            delay = opts.spawn_delay

            def slow_spawn(driver, *args, **kwargs):
                time.sleep(delay)
                return real_spawn(driver, *args, **kwargs)

            self.useFixture(_attr_patch(fake.FakeDriver, "spawn", slow_spawn))

        def runTest(self):
            app = identity_middleware(self.api_fixture.app())
            server = simple_server.make_server(
                "127.0.0.1",
                self.options.port,
                app,
                server_class=_ThreadingWSGIServer,
                handler_class=_QuietHandler,
            )
            thread = threading.Thread(target=server.serve_forever, name="nova-api", daemon=True)
            thread.start()
            try:
                endpoint = f"http://127.0.0.1:{server.server_address[1]}/v2.1"
                _wait_until_answers(endpoint + "/flavors")
                self.on_ready(endpoint)
                while not self.stop_event.wait(0.5):
                    pass
            finally:
                server.shutdown()
                server.server_close()

    return NovaBed


def _paste_config():
    """Path of nova's api-paste.ini as installed by the wheel (data file under the prefix)."""
    path = os.path.join(sys.prefix, "etc", "nova", "api-paste.ini")
    if not os.path.exists(path):
        raise SystemExit(f"nova's api-paste.ini not found at {path}: rerun setup.sh")
    return path


def cell_lock_patch():
    """A fixture under which nova's CellDatabases fixture locks with ReaderPreferringLock.

    The module is imported by name: as an attribute path, "nova.tests.fixtures.nova" is
    the nova package (the fixtures package imports it under that name), and a patch
    there would change nothing.
    """
    cells_module = importlib.import_module("nova.tests.fixtures.nova")
    return _attr_patch(cells_module, "ReaderWriterLock", ReaderPreferringLock)


def _attr_patch(obj, attr, value):
    """A fixture that sets obj.attr to value and restores it on cleanup.

    It takes the object itself, never a dotted path: a path is resolved attribute by
    attribute, and a package attribute can shadow the submodule of the same name.
    """
    import fixtures

    return fixtures.MockPatchObject(obj, attr, value)


def _wait_until_answers(url, timeout=30.0):
    """Poll url until nova answers 200: proves the whole pipeline before READY."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _log_to_stderr(level):
    """Send nova's log records at `level` and above to stderr (the harness keeps INFO in memory)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level.upper())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    # The harness formats every DEBUG record to prove it formats; a server has no use
    # for that and it costs throughput.
    root.setLevel(min(logging.INFO, handler.level))


def _set_on_eof(stream, event):
    """Block reading stream until EOF, then set event."""
    while stream.read(4096):
        pass
    event.set()


def main(argv=None):
    """Run the bed until SIGTERM/SIGINT; exit 0 on a clean run, 1 if nova failed."""
    options = parse_args(argv)
    # `kill -USR1 PID` dumps every thread's stack to stderr, for a server that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    if options.stop_on_stdin_eof:
        threading.Thread(target=_set_on_eof, args=(sys.stdin, stop_event), daemon=True).start()

    def on_ready(endpoint):
        _log_to_stderr(options.log_level)
        print("READY", endpoint, flush=True)

    bed = _make_bed_class()(options, on_ready, stop_event)
    result = unittest.TestResult()
    bed.run(result)
    for _, trace in result.errors + result.failures:
        print(trace, file=sys.stderr)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
