"""Host-side control of the Nova test-bed server (stdlib only).

The server itself (testbed/nova/server.py) runs under its own virtual environment built
by testbed/nova/setup.sh; this module builds that venv on demand and runs the server as
a subprocess on a loopback port.

Identity is stubbed on the server: the URL says who you are (see server.py).
``NovaServer.endpoint_for(project_id, admin=...)`` builds those URLs.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

NOVA_DIR = Path(__file__).resolve().parent / "nova"
SETUP_SH = NOVA_DIR / "setup.sh"
SERVER_PY = NOVA_DIR / "server.py"
DEFAULT_TESTBED_DIR = "/var/cache/csctl-testbed"
# Matches server.DEFAULT_PROJECT: the project of the plain /v2.1 endpoint.
DEFAULT_PROJECT = "6f70656e737461636b20342065766572"


def testbed_dir() -> Path:
    """Directory holding the test bed's cached environments ($CSCTL_TESTBED_DIR)."""
    return Path(os.environ.get("CSCTL_TESTBED_DIR") or DEFAULT_TESTBED_DIR)


def venv_python() -> Path:
    """The nova venv's python interpreter (exists once ensure_venv() has run)."""
    return testbed_dir() / "nova-venv" / "bin" / "python"


def ensure_venv(timeout: float = 1200.0) -> Path:
    """Build the nova venv if needed (instant when cached) and return its python.

    Raises RuntimeError with setup.sh's output if the build fails.
    """
    proc = subprocess.run(
        ["bash", str(SETUP_SH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{SETUP_SH} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return venv_python()


class NovaServer:
    """A Nova API test-bed server in a subprocess; use as a context manager.

    ``endpoint`` is the member endpoint of the default project, e.g.
    ``http://127.0.0.1:PORT/v2.1``; ``endpoint_for()`` gives other identities.
    """

    def __init__(
        self,
        port: int = 0,
        python: str | os.PathLike[str] | None = None,
        ready_timeout: float = 120.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.python = str(python or venv_python())
        self.ready_timeout = ready_timeout
        self.extra_args = tuple(extra_args)
        self.endpoint: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self.endpoint is None:
            raise RuntimeError("NovaServer is not running")
        return self.endpoint.rsplit("/v2.1", 1)[0]

    def endpoint_for(self, project_id: str | None = None, admin: bool = False) -> str:
        """Compute endpoint acting as a member (or admin) of project_id (a hex id)."""
        prefix = "/admin" if admin else ""
        return f"{self.base_url}{prefix}/v2.1/{project_id or DEFAULT_PROJECT}"

    def start(self) -> NovaServer:
        """Start the server and wait for its READY line; raise RuntimeError on failure."""
        self._tmp = tempfile.TemporaryDirectory(prefix="csctl-nova-")
        self._log = open(Path(self._tmp.name) / "server.log", "w+")  # noqa: SIM115
        cmd = [self.python, str(SERVER_PY), "--port", str(self.port), "--stop-on-stdin-eof"]
        # The server stops when our end of its stdin closes, so it never outlives us.
        self._proc = subprocess.Popen(
            [*cmd, *self.extra_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,  # a Ctrl-C meant for pytest must not kill it mid-test
        )
        try:
            self.endpoint = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> str:
        """Read the server's stdout until ``READY <endpoint>``; return the endpoint."""
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(timeout=left):
                    continue
                line = self._proc.stdout.readline()
                if line.startswith("READY "):
                    return line.split(None, 1)[1].strip()
                if not line:  # EOF: the server died
                    self._proc.wait()
                    raise RuntimeError(f"nova server exited:\n{self.log_tail()}")
        raise RuntimeError(f"nova server not ready in {self.ready_timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's stderr log (nova warnings and errors)."""
        if self._log is None or self._log.closed:
            return ""
        # A separate open: the server writes through our file's offset, so seeking ours
        # would make it write over the start of the log.
        with open(self._log.name, errors="replace") as log:
            return log.read()[-chars:]

    def dump_threads(self, settle: float = 2.0, chars: int = 30000) -> str:
        """Have the server write every thread's stack to its log (SIGUSR1); return the
        log's end, where threads that only wait for work are left out."""
        if self._proc is None or self._proc.poll() is not None:
            return self.log_tail(chars)
        before = len(self.log_tail(10**9))
        os.kill(self._proc.pid, signal.SIGUSR1)
        time.sleep(settle)  # faulthandler writes from the server's own thread
        log = self.log_tail(10**9)
        earlier, dump = log[:before], log[before:]
        busy = [block for block in dump.split("\n\n") if "in _wait_for_work" not in block]
        return (earlier[-chars // 4 :] + "\n" + "\n\n".join(busy))[-chars:]

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its temp dir; return its exit code."""
        code = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
            try:
                code = self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._proc = None
        if self._log is not None:
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.endpoint = None
        return code

    def __enter__(self) -> NovaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
