"""csctl's HTCondor test pool: a real central manager and schedd on loopback.

HTCondor (23.9) runs in a Debian trixie chroot built by ``condor/build-root.sh``;
host processes reach it with the PyPI bindings through a client config file.
The base pool has no execute slots, so submitted jobs stay idle until a test (or
csctl's "local" cloud driver) starts a startd with :func:`start_startd`.

Usage, from the repository root, as root::

    python3 -m testbed.pool up       # build (cached) and start, or reuse a running pool
    python3 -m testbed.pool status
    eval "export $(python3 -m testbed.pool env)"
    python3 -m testbed.pool down     # stop every daemon, undo every mount

Everything lives under ``$CSCTL_TESTBED_DIR`` (default /var/cache/csctl-testbed);
the only change outside it is the ``csctl-user`` account on the host.
Security: daemons authenticate with FS inside the chroot and with IDTOKENS signed
by the pool key (``passwords.d/POOL``); host clients present an IDTOKEN.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "csctl-user"
POOL_NAME = "csctl-testbed"  # also the trust, UID and filesystem domain
COLLECTOR = "127.0.0.1:9618"
STATE_DIR = "/var/lib/csctl-testbed"  # daemons' LOCAL_DIRs, inside the chroot
STARTDS_DIR = f"{STATE_DIR}/startds"
SCHEDDS_DIR = f"{STATE_DIR}/schedds"  # extra schedds (opt-in, for benchmarks)
POOL_CONFIG = "/etc/condor/condor_config"  # Debian's; it reads config.d/
SIGNING_KEY = "/etc/condor/passwords.d/POOL"
CONDOR_DIRS = ("log", "spool", "execute", "lock", "run")
_BUILD_SCRIPT = Path(__file__).resolve().parent / "condor" / "build-root.sh"

# Shared by the central manager, extra startds and (in part) host clients.
# FS works between processes in the chroot (they share its /tmp); IDTOKENS is
# what host clients and csctl's VMs use. READ is open on loopback so status
# queries need no credentials; advertising a startd or master needs any
# authenticated identity of the pool (e.g. a VM token minted by csctl).
COMMON_CONFIG = f"""\
CONDOR_HOST = 127.0.0.1
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
ENABLE_IPV6 = False
UID_DOMAIN = {POOL_NAME}
TRUST_DOMAIN = {POOL_NAME}
FILESYSTEM_DOMAIN = {POOL_NAME}

SEC_DEFAULT_AUTHENTICATION = REQUIRED
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, IDTOKENS
SEC_DEFAULT_ENCRYPTION = REQUIRED
SEC_DEFAULT_INTEGRITY = REQUIRED
SEC_READ_AUTHENTICATION = OPTIONAL
SEC_READ_ENCRYPTION = OPTIONAL
SEC_READ_INTEGRITY = OPTIONAL
ALLOW_READ = */127.0.0.1
ALLOW_WRITE = *@$(UID_DOMAIN)
ALLOW_DAEMON = condor@$(UID_DOMAIN) root@$(UID_DOMAIN)
ALLOW_NEGOTIATOR = condor@$(UID_DOMAIN)
ALLOW_ADMINISTRATOR = condor@$(UID_DOMAIN) root@$(UID_DOMAIN)
ALLOW_ADVERTISE_STARTD = *@$(UID_DOMAIN)
ALLOW_ADVERTISE_MASTER = *@$(UID_DOMAIN)
ALLOW_ADVERTISE_SCHEDD = condor@$(UID_DOMAIN)

# Jobs in a chroot cannot unshare mount namespaces.
MOUNT_UNDER_SCRATCH =
"""

POOL_ONLY_CONFIG = f"""\
use ROLE: CentralManager
use ROLE: Submit
COLLECTOR_NAME = {POOL_NAME}
LOCAL_DIR = {STATE_DIR}/pool
{{dirs}}
# Match quickly: the 20 s cycle delay would override a short interval.
NEGOTIATOR_INTERVAL = 5
NEGOTIATOR_CYCLE_DELAY = 1
NEGOTIATOR_MIN_INTERVAL = 1
SCHEDD_INTERVAL = 5
# csctl sees which VM runs each job from the job ad, also when the collector forgot the VM
SYSTEM_JOB_MACHINE_ATTRS = CsctlId
# csctl publishes its declared downtimes as generic ads (UPDATE_AD_GENERIC and
# INVALIDATE_ADS_GENERIC need DAEMON at the collector); here csctl runs as csctl-user
COLLECTOR.ALLOW_DAEMON = $(ALLOW_DAEMON) csctl-user@$(UID_DOMAIN)
# csctl's VMs may advertise only startds of their own boot batch (csctl README, Security)
COLLECTOR_REQUIREMENTS = (CsctlBatch =?= undefined && CsctlId =?= undefined) || \\
  (AuthenticatedIdentity =?= strcat("vm-", CsctlBatch, "@{POOL_NAME}") && \\
   substr(CsctlId, 0, size(CsctlBatch) + 1) =?= strcat(CsctlBatch, "-"))
"""

# A startd's config is written by hand, not Debian's condor_config, so that it
# does not read config.d/ (the central manager's roles). A second master on the
# same address must not share the pool master's family session.
STARTD_BASE_CONFIG = """\
RELEASE_DIR = /usr
BIN = /usr/bin
SBIN = /usr/sbin
LIBEXEC = /usr/libexec/condor
LOCAL_DIR = {local_dir}
ETC = $(LOCAL_DIR)
{dirs}
DAEMON_LIST = MASTER, STARTD
MASTER_NAME = {name}
STARTD_NAME = {name}
USE_SHARED_PORT = False
SEC_USE_FAMILY_SESSION = False
START = True
SUSPEND = False
PREEMPT = False
KILL = False
WANT_SUSPEND = False
# Benchmarks hold up a peaceful shutdown for ~10 s and tell tests nothing.
RunBenchmarks = False
"""


# An extra schedd: a second condor_master with a schedd only, its own name, LOCAL_DIR
# (spool, job queue) and port. It advertises to the pool's collector with FS, as the
# pool's own schedd does, and checks host clients' IDTOKENs against the pool key.
SCHEDD_BASE_CONFIG = """\
RELEASE_DIR = /usr
BIN = /usr/bin
SBIN = /usr/sbin
LIBEXEC = /usr/libexec/condor
LOCAL_DIR = {local_dir}
ETC = $(LOCAL_DIR)
{dirs}
SEC_PASSWORD_DIRECTORY = /etc/condor/passwords.d
DAEMON_LIST = MASTER, SCHEDD
MASTER_NAME = {name}
SCHEDD_NAME = {name}
USE_SHARED_PORT = False
SEC_USE_FAMILY_SESSION = False
SCHEDD_INTERVAL = 5
SYSTEM_JOB_MACHINE_ATTRS = CsctlId
# Benchmarks queue a quarter of a million jobs per schedd (the defaults stop at 100,000).
MAX_JOBS_PER_OWNER = 1000000
MAX_JOBS_SUBMITTED = 1000000
MAX_JOBS_PER_SUBMISSION = 1000000
"""


@dataclass(frozen=True)
class Paths:
    """Where the test bed keeps things; chroot paths are mapped with :meth:`host`."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def client_config(self) -> Path:
        return self.run / "client_condor_config"

    @property
    def token_dir(self) -> Path:
        return self.run / "tokens.d"

    @property
    def signing_key(self) -> Path:
        return self.host(SIGNING_KEY)

    @property
    def jobs(self) -> str:
        """A directory with the same path on the host and in the chroot (job Iwd)."""
        return str(self.base / "jobs")

    def host(self, chroot_path: str) -> Path:
        """The host path of a path inside the chroot."""
        return self.root / chroot_path.lstrip("/")


def paths(base: str | os.PathLike[str] | None = None) -> Paths:
    """The test bed's paths under *base* (default ``$CSCTL_TESTBED_DIR``)."""
    base = base or os.environ.get("CSCTL_TESTBED_DIR") or "/var/cache/csctl-testbed"
    # Resolved, because /proc/<pid>/root (used to find our processes) is.
    return Paths(Path(base).resolve())


def client_env(p: Paths) -> dict[str, str]:
    """Environment variables a host process needs to use the pool with htcondor2."""
    return {"CONDOR_CONFIG": str(p.client_config)}


# ---------------------------------------------------------------- commands in the root


def in_root(
    p: Paths, *args: str, config: str = POOL_CONFIG, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command inside the chroot with a clean environment and *config*."""
    # A clean environment keeps the host's CONDOR_CONFIG and _CONDOR_* out.
    cmd = [
        "chroot",
        str(p.root),
        "/usr/bin/env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        f"CONDOR_CONFIG={config}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def pids_in_root(p: Paths) -> list[int]:
    """Processes whose root directory is the chroot: by construction, ours."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == str(p.root):
                pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not collected it yet.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def process_name(pid: int) -> str:
    """The short command name of *pid* ("" once it has gone)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


@contextlib.contextmanager
def _locked(p: Paths) -> Iterator[None]:
    # Serialise up/down: two pytest sessions may start at once.
    p.run.mkdir(parents=True, exist_ok=True)
    with open(p.run / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    # Atomically: a concurrent reader (another test session importing
    # htcondor2) must never see a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


# ---------------------------------------------------------------- building blocks of `up`


def build_root(p: Paths) -> None:
    """Build the chroot with HTCondor unless a finished build is cached."""
    subprocess.run(["bash", str(_BUILD_SCRIPT), str(p.root)], check=True, stdout=subprocess.DEVNULL)


def ensure_user(p: Paths) -> tuple[int, int]:
    """Create ``csctl-user`` on the host (if missing) and in the chroot, same uid/gid."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        # An ordinary (not --system) account: its uid cannot clash with the
        # chroot's system accounts.
        subprocess.run(
            ["useradd", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True
        )
    uid, gid = pwd.getpwnam(USER)[2:4]
    inside = in_root(p, "id", USER, check=False)
    if inside.returncode != 0:
        in_root(p, "groupadd", "-g", str(gid), USER)
        in_root(p, "useradd", "-u", str(uid), "-g", str(gid), "--no-create-home", "--shell", "/bin/sh", USER)
    elif f"uid={uid}(" not in inside.stdout or f"gid={gid}(" not in inside.stdout:
        # The host account was recreated with other ids since the root was built.
        in_root(p, "groupmod", "-g", str(gid), USER)
        in_root(p, "usermod", "-u", str(uid), "-g", str(gid), USER)
    return uid, gid


def mount_proc(p: Paths) -> None:
    """Mount /proc in the chroot (HTCondor needs it) unless already mounted."""
    target = p.root / "proc"
    if str(target) not in _mounts_under(p):
        subprocess.run(["mount", "-t", "proc", "proc", str(target)], check=True)


def _mounts_under(p: Paths) -> list[str]:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    targets = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [t for t in targets if t.startswith(str(p.root) + "/")]


def unmount_all(p: Paths) -> None:
    """Undo every mount under the chroot, deepest first."""
    for target in sorted(_mounts_under(p), key=len, reverse=True):
        if subprocess.run(["umount", target], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", target], check=True)


def _condor_ids(p: Paths) -> tuple[int, int]:
    out = in_root(p, "id", "condor").stdout
    uid, gid = re.search(r"uid=(\d+).*?gid=(\d+)", out).groups()  # type: ignore[union-attr]
    return int(uid), int(gid)


def make_local_dir(p: Paths, local_dir: str) -> str:
    """Create a fresh LOCAL_DIR in the chroot; returns its config lines."""
    host_dir = p.host(local_dir)
    shutil.rmtree(host_dir, ignore_errors=True)
    uid, gid = _condor_ids(p)
    for sub in CONDOR_DIRS:
        (host_dir / sub).mkdir(parents=True, mode=0o755)
        os.chown(host_dir / sub, uid, gid)
    return "\n".join(f"{sub.upper()} = $(LOCAL_DIR)/{sub}" for sub in CONDOR_DIRS)


def write_hosts(p: Paths) -> None:
    """Make the host's name resolve in the chroot (it shares the host's hostname)."""
    hosts = p.host("/etc/hosts")
    line = f"127.0.0.1\t{socket.gethostname()}\n"
    if line not in hosts.read_text():
        with hosts.open("a") as f:
            f.write(line)


def write_pool_config(p: Paths) -> None:
    """Write the central manager + submit config into the chroot's config.d."""
    dirs = make_local_dir(p, f"{STATE_DIR}/pool")
    text = "# Written by testbed/pool.py\n" + COMMON_CONFIG + POOL_ONLY_CONFIG.format(dirs=dirs)
    p.host("/etc/condor/config.d/50-csctl-testbed.config").write_text(text)


def ensure_signing_key(p: Paths) -> None:
    """Create the POOL signing key once; it persists with the cached root."""
    if not p.signing_key.exists():
        p.signing_key.parent.mkdir(mode=0o700, exist_ok=True)
        in_root(p, "condor_store_cred", "add", "-c", "-p", secrets.token_hex(32), "-f", SIGNING_KEY)


def write_client_config(p: Paths) -> None:
    """Write the host-side client config (no daemon needed; safe to call early)."""
    p.run.mkdir(parents=True, exist_ok=True)
    _write(
        p.client_config,
        f"""\
# Host-side client config for csctl's test pool (written by testbed/pool.py)
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = {COLLECTOR}
NETWORK_INTERFACE = 127.0.0.1
ENABLE_IPV6 = False
UID_DOMAIN = {POOL_NAME}
TRUST_DOMAIN = {POOL_NAME}
# Jobs with should_transfer_files = NO match startds of this filesystem domain.
FILESYSTEM_DOMAIN = {POOL_NAME}
# FS cannot work across the chroot boundary (separate /tmp): present a token.
SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS
SEC_TOKEN_DIRECTORY = {p.token_dir}
SEC_TOKEN_SYSTEM_DIRECTORY = {p.token_dir}
SEC_PASSWORD_DIRECTORY = {p.run / "no-passwords.d"}
# 24.0.22+ clients need this for FS against the 23.9 daemons, should FS be used.
SEC_FS_ENFORCE_CHANNEL_BINDING = False
""",
    )


def mint_token(p: Paths, identity: str, *authz: str, lifetime: int | None = None) -> str:
    """An IDTOKEN for *identity* signed with the POOL key (``condor_token_create``).

    *authz* limits it to those authorizations (e.g. ``ADVERTISE_STARTD``).
    """
    args = ["condor_token_create", "-identity", identity, "-key", "POOL"]
    args += [arg for level in authz for arg in ("-authz", level)]
    if lifetime is not None:
        args += ["-lifetime", str(lifetime)]
    return in_root(p, *args).stdout.strip()


def mint_user_token(p: Paths) -> None:
    """Give host clients an IDTOKEN for csctl-user (they submit as that user)."""
    p.token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(p.token_dir / USER, mint_token(p, f"{USER}@{POOL_NAME}") + "\n", mode=0o600)


def make_jobs_dir(p: Paths, uid: int, gid: int) -> None:
    """A job directory at the same path on both sides, without a mount.

    The directory lives in the chroot at the path ``p.jobs``; on the host, that
    path is a symlink into the chroot. Jobs use it as their Iwd.
    """
    inside = p.host(p.jobs)
    inside.mkdir(parents=True, exist_ok=True)
    os.chown(inside, uid, gid)
    link = Path(p.jobs)
    if not link.is_symlink():
        link.symlink_to(inside)


def start_master(p: Paths, config: str, pidfile: str) -> int:
    """Start a condor_master in the chroot (it daemonises); returns its pid."""
    with contextlib.suppress(FileNotFoundError):
        p.host(pidfile).unlink()
    in_root(p, "condor_master", "-pidfile", pidfile, config=config)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(p.host(pidfile).read_text())
        time.sleep(0.1)
    raise RuntimeError(f"condor_master wrote no pid file {p.host(pidfile)}")


def pool_answers(p: Paths) -> bool:
    """True when the collector lists itself, negotiator and schedd, and the schedd answers."""
    if not (p.root / "proc" / "self").exists():
        return False
    try:
        ads = in_root(p, "condor_status", "-any", "-af", "MyType", check=False, timeout=20)
        if not {"Collector", "Negotiator", "Scheduler"} <= set(ads.stdout.split()):
            return False
        return in_root(p, "condor_q", "-totals", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_until_answers(p: Paths, timeout: float = 60) -> None:
    """Wait for collector and schedd; raise with the log's tail if they never answer."""
    deadline = time.monotonic() + timeout
    while not pool_answers(p):
        if time.monotonic() > deadline:
            log = p.host(f"{STATE_DIR}/pool/log/MasterLog")
            tail = log.read_text()[-2000:] if log.exists() else "(no MasterLog)"
            raise RuntimeError(f"test pool did not answer within {timeout} s:\n{tail}")
        time.sleep(0.5)


# ---------------------------------------------------------------- up / down / status


def up(base: str | os.PathLike[str] | None = None) -> Paths:
    """Start the pool, or reuse it if it already runs and answers. Needs root."""
    p = paths(base)
    if os.geteuid() != 0:
        raise PermissionError("the HTCondor test pool needs root (debootstrap, chroot)")
    with _locked(p):
        write_client_config(p)
        if pool_answers(p):
            return p
        _stop_processes(p)  # leftovers of a crashed run
        unmount_all(p)
        _check_port_free()
        build_root(p)
        mount_proc(p)
        uid, gid = ensure_user(p)
        write_hosts(p)
        write_pool_config(p)
        shutil.rmtree(p.host(STARTDS_DIR), ignore_errors=True)
        ensure_signing_key(p)
        mint_user_token(p)
        make_jobs_dir(p, uid, gid)
        start_master(p, POOL_CONFIG, f"{STATE_DIR}/pool/run/master.pid")
        wait_until_answers(p)
    return p


def _check_port_free() -> None:
    host, port = COLLECTOR.split(":")
    with socket.socket() as s:
        if s.connect_ex((host, int(port))) == 0:
            raise RuntimeError(f"{COLLECTOR} is taken by another process (another test pool?)")


def _stop_processes(p: Paths, timeout: float = 15) -> None:
    # SIGQUIT asks each master for a fast shutdown of its daemons (and jobs);
    # whatever is left in the chroot afterwards is killed.
    if not p.root.exists():
        return
    masters = [pid for pid in pids_in_root(p) if process_name(pid) == "condor_master"]
    for pid in masters:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    _wait_gone(masters, timeout)
    rest = pids_in_root(p)
    for pid in rest:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(rest, 5)


def down(base: str | os.PathLike[str] | None = None) -> None:
    """Stop every daemon in the chroot (pool and extra startds) and undo all mounts."""
    p = paths(base)
    with _locked(p):
        _stop_processes(p)
        unmount_all(p)


def status(base: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """What runs: processes in the chroot and whether the pool answers."""
    p = paths(base)
    procs = sorted((process_name(pid), pid) for pid in pids_in_root(p)) if p.root.exists() else []
    return {
        "root": str(p.root),
        "built": (p.root / ".csctl-built").exists(),
        "answers": pool_answers(p) if p.root.exists() else False,
        "collector": COLLECTOR,
        "processes": [f"{name}[{pid}]" for name, pid in procs],
        "startds": running_startds(p),
    }


# ---------------------------------------------------------------- extra startds ("VMs")


def _startd_dir(name: str) -> str:
    """LOCAL_DIR of extra startd *name*, inside the chroot."""
    return f"{STARTDS_DIR}/{name}"


def _running_masters(p: Paths, parent: str) -> list[str]:
    """Names of the directories under ``parent`` (inside the chroot) whose condor_master runs."""
    ours = pids_in_root(p)
    names = []
    for pidfile in sorted(p.host(parent).glob("*/run/master.pid")):
        with contextlib.suppress(OSError, ValueError):
            if int(pidfile.read_text()) in ours:
                names.append(pidfile.parent.parent.name)
    return names


def running_startds(p: Paths) -> list[str]:
    """Names of the extra startds whose condor_master runs."""
    return _running_masters(p, STARTDS_DIR)


@dataclass
class Startd:
    """An extra condor_master + condor_startd in the chroot: one test-bed "VM"."""

    p: Paths
    name: str
    local_dir: str  # inside the chroot
    pid: int  # of its condor_master

    @property
    def config(self) -> str:
        """The startd's CONDOR_CONFIG, as a chroot path."""
        return f"{self.local_dir}/condor_config"

    def running(self) -> bool:
        """True while its condor_master lives."""
        return _alive(self.pid) and self.pid in pids_in_root(self.p)

    def stop(self, timeout: float = 120) -> None:
        """Peaceful shutdown: running jobs finish, then the startd leaves the pool.

        Falls back to :meth:`kill` after *timeout* seconds.
        """
        if self.running():
            in_root(self.p, "condor_off", "-peaceful", "-daemon", "master", config=self.config, check=False)
            if _wait_gone([self.pid], timeout):
                self.kill()

    def shut_down(self, timeout: float = 60) -> None:
        """SIGTERM to its master, as a VM's own shutdown does: the daemons withdraw their
        ads and exit. Needs no authorization, so it suits a startd whose only credential
        is an advertising token. Falls back to :meth:`kill` after *timeout* seconds."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if _wait_gone([self.pid], timeout):
                self.kill()

    def kill(self) -> None:
        """Kill the master and everything under it at once, as a dying VM would."""
        # Stop the tree first, so that no process forks a child we would miss.
        tree: set[int] = set()
        while new := ({self.pid, *_descendants(self.pid)} - tree):
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            tree |= new
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(list(tree), 5)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def startd_config(p: Paths, name: str, extra_config: str = "") -> str:
    """A fresh LOCAL_DIR for startd *name* and its full config text (base + extra)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"startd name {name!r}: use letters, digits, '_', '.', '-'")
    dirs = make_local_dir(p, _startd_dir(name))
    base = STARTD_BASE_CONFIG.format(local_dir=_startd_dir(name), name=name, dirs=dirs)
    return (
        f"# Written by testbed/pool.py for startd {name}\n{COMMON_CONFIG}{base}"
        f"\n# ---- extra config\n{extra_config}\n"
    )


def start_startd(name: str, extra_config: str = "", base: str | os.PathLike[str] | None = None) -> Startd:
    """Start an extra condor_master + condor_startd named *name* in the pool's chroot.

    Its config is the pool's common part (domains, security, network), a startd
    part with its own LOCAL_DIR (``/var/lib/csctl-testbed/startds/<name>``; the
    chroot's /etc/condor is not read), then
    *extra_config*, which wins where it repeats a knob. It authenticates to the
    collector with FS unless *extra_config* says otherwise (e.g. an IDTOKEN).
    The pool must be up. Its ad appears in the collector a few seconds later.
    """
    p = paths(base)
    if name in running_startds(p):
        raise RuntimeError(f"startd {name} is already running")
    local_dir = _startd_dir(name)
    text = startd_config(p, name, extra_config)
    p.host(f"{local_dir}/condor_config").write_text(text)
    pid = start_master(p, f"{local_dir}/condor_config", f"{local_dir}/run/master.pid")
    return Startd(p, name, local_dir, pid)


# ---------------------------------------------------------------- extra schedds (opt-in)


class Schedd(Startd):
    """An extra condor_master + condor_schedd in the chroot (see :func:`start_schedd`).

    ``shut_down`` (SIGTERM) withdraws its ad from the collector; its jobs stay in its
    own spool until :func:`start_schedd` makes a fresh LOCAL_DIR.
    """


def running_schedds(p: Paths) -> list[str]:
    """Names of the extra schedds whose condor_master runs."""
    return _running_masters(p, SCHEDDS_DIR)


def start_schedd(name: str, base: str | os.PathLike[str] | None = None) -> Schedd:
    """Start an extra schedd named *name* next to the pool's own (which stays as it is).

    For benchmarks with several schedds; the tests' pool has one schedd, so stop it
    (``shut_down``, or :func:`stop_schedds`) before releasing the session lock. The pool
    must be up; the schedd's ad appears in the collector a few seconds later.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"schedd name {name!r}: use letters, digits, '_', '.', '-'")
    p = paths(base)
    if name in running_schedds(p):
        raise RuntimeError(f"schedd {name} is already running")
    local_dir = f"{SCHEDDS_DIR}/{name}"
    dirs = make_local_dir(p, local_dir)
    text = SCHEDD_BASE_CONFIG.format(local_dir=local_dir, name=name, dirs=dirs)
    p.host(f"{local_dir}/condor_config").write_text(
        f"# Written by testbed/pool.py for schedd {name}\n{COMMON_CONFIG}{text}"
    )
    pid = start_master(p, f"{local_dir}/condor_config", f"{local_dir}/run/master.pid")
    return Schedd(p, name, local_dir, pid)


def stop_schedds(base: str | os.PathLike[str] | None = None) -> None:
    """Shut down every extra schedd (their ads leave the collector); the pool's stays."""
    p = paths(base)
    for name in running_schedds(p):
        local_dir = f"{SCHEDDS_DIR}/{name}"
        pid = int(p.host(f"{local_dir}/run/master.pid").read_text())
        Schedd(p, name, local_dir, pid).shut_down()


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python3 -m testbed.pool up|down|status|env``."""
    parser = argparse.ArgumentParser(prog="python3 -m testbed.pool", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    args = parser.parse_args(argv)
    if args.command == "up":
        started = time.monotonic()
        p = up()
        print(
            f"pool up at {COLLECTOR} in {time.monotonic() - started:.1f} s; client config {p.client_config}",
            file=sys.stderr,
        )
    elif args.command == "down":
        down()
    elif args.command == "status":
        for key, value in status().items():
            print(f"{key}: {value}")
    else:
        for key, value in client_env(paths()).items():
            print(f"{key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
