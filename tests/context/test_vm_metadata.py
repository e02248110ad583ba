"""The VM setup script keeps jobs from the metadata service, for real.

Each test gets three network namespaces wired by veth pairs: a cloud's, holding the
metadata addresses (169.254.169.254 and fd00:ec2::254) and a stand-in metadata service
(testbed/metadata_server.py) serving the batch's real user-data; a VM's, routing to it;
and a container's behind the VM, as Docker puts one. The setup script runs in the VM's
namespace as root, as cloud-init runs it; then an unprivileged user of the VM and the
container must fail to read the user-data, while the VM's root still can. Nothing leaves
the namespaces: the host's own firewall, addresses and sysctls are never touched (one
test checks the host's ruleset stays as it was).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from csctl.config import parse_config
from csctl.context.render import Batch, render_user_data, setup_script
from csctl.context.tokens import SigningKey
from testbed.pool import USER

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2: network namespaces and firewall rules",
)

ROOT = Path(__file__).resolve().parents[2]
IP = shutil.which("ip") or "ip"
IMDS = "169.254.169.254"
IMDS6 = "fd00:ec2::254"
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BARE_PATH = "/usr/bin:/bin"  # Debian keeps nft and iptables in /usr/sbin
BATCH_ID = "h-0123abcd"
CONFIG = parse_config(
    """
[pool]
name = "pool.test"
collector = "cm.test:9618"
[clouds.H]
driver = "ec2"
region = "r"
[vm_types.t]
cpus = 2
memory = 2000
disk = 10
images = { H = "ami-1" }
"""
)
KEY = SigningKey("POOL", b"a test key, not the pool's")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OPEN_LINE = (
    f"csctl: the metadata service ({IMDS}) stays open to every user of this VM (CSCTL_METADATA_OPEN=1)\n"
)


def unprivileged() -> tuple[int, int]:
    """The test pool's job user if this host has it, else nobody."""
    for name in (USER, "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    pytest.skip("no unprivileged user")


@dataclass
class Namespace:
    """The VM's network namespace, the cloud's (with a stand-in metadata service) and a
    container's, on a bridge of the VM as Docker would put it."""

    name: str  # the VM's
    container: str
    log: Path

    def run(
        self, *argv: str, env: dict[str, str] | None = None, as_user: bool = False, container: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` on the VM (as root or as the unprivileged user) or in the container."""
        prefix = [IP, "netns", "exec", self.container if container else self.name]
        if as_user:
            uid, gid = unprivileged()
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        return subprocess.run(
            [*prefix, *argv],
            env=env or {"PATH": SBIN_PATH},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def requests(self) -> list[dict[str, object]]:
        """The requests the metadata service saw, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def read_user_data(
        self, address: str = IMDS, as_user: bool = False, container: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Fetch the user-data as a job would: IMDSv2 when the service gives a token, else v1."""
        base = f"http://[{address}]" if ":" in address else f"http://{address}"
        fetch = (
            f't=$(curl -sS -g --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" '
            f"{base}/latest/api/token) || exit $?; "
            f'curl -sS -g -f --max-time 5 -H "X-aws-ec2-metadata-token: $t" {base}/latest/user-data'
        )
        return self.run("sh", "-c", fetch, as_user=as_user, container=container)


def _ip(where: str, *argv: str) -> None:
    subprocess.run([IP, "netns", "exec", where, IP, *argv], check=True, capture_output=True, timeout=30)


def _wire(cloud: str, vm: str, container: str) -> None:
    """cloud (10.98.0.1, the metadata addresses) -- vm (10.98.0.2; 10.97.0.1, forwarding)
    -- container (10.97.0.2): the metadata service is off the VM, as on a cloud."""
    _ip(cloud, "link", "add", "m0", "type", "veth", "peer", "name", "v0", "netns", vm)
    _ip(vm, "link", "add", "c1", "type", "veth", "peer", "name", "c0", "netns", container)
    for where, device, addresses in (
        (cloud, "m0", ["10.98.0.1/24", f"{IMDS}/32", "fd98::1/64", f"{IMDS6}/128"]),
        (vm, "v0", ["10.98.0.2/24", "fd98::2/64"]),
        (vm, "c1", ["10.97.0.1/24"]),
        (container, "c0", ["10.97.0.2/24"]),
    ):
        _ip(where, "link", "set", "lo", "up")
        for address in addresses:
            _ip(where, "addr", "add", address, "dev", device, *(["nodad"] if ":" in address else []))
        _ip(where, "link", "set", device, "up")
    _ip(cloud, "route", "add", "10.97.0.0/24", "via", "10.98.0.2")
    _ip(vm, "route", "add", IMDS, "via", "10.98.0.1")
    _ip(vm, "route", "add", IMDS6, "via", "fd98::1")
    _ip(container, "route", "add", "default", "via", "10.97.0.1")
    subprocess.run(
        [IP, "netns", "exec", vm, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=30
    )  # the VM's namespace only


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Callable[..., Namespace]]:
    """A factory: ``namespace(tokens=..., launch_index=...)`` makes the namespaces and starts
    the metadata service; everything is removed afterwards."""
    base = f"csctl-md-{os.getpid()}-{secrets.token_hex(3)}"
    names = {part: f"{base}-{part}" for part in ("cloud", "vm", "ct")}
    servers: list[subprocess.Popen[str]] = []

    def make(tokens: str = "optional", launch_index: int = 2) -> Namespace:
        for name in names.values():
            subprocess.run([IP, "netns", "add", name], check=True, capture_output=True, timeout=30)
        _wire(names["cloud"], names["vm"], names["ct"])
        user_data = tmp_path / "user-data"
        user_data.write_text(render_user_data(CONFIG, Batch(BATCH_ID, "t", "H", "ec2"), KEY, NOW))
        ns = Namespace(names["vm"], names["ct"], tmp_path / "requests.jsonl")
        server = subprocess.Popen(
            [IP, "netns", "exec", names["cloud"], sys.executable, "-m", "testbed.metadata_server"]
            + ["--address", IMDS, "--address", IMDS6, "--launch-index", str(launch_index)]
            + ["--user-data", str(user_data), "--tokens", tokens, "--log", str(ns.log)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        servers.append(server)
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        return ns

    try:
        yield make
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)
        for name in names.values():
            subprocess.run([IP, "netns", "del", name], capture_output=True, check=False, timeout=30)


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    """The VM's HTCondor etc directory, its token left world-readable to be fixed."""
    etc = tmp_path / "etc"
    for sub in ("config.d", "tokens.d", "passwords.d"):
        (etc / sub).mkdir(parents=True)
    for secret in (etc / "tokens.d" / "csctl-vm", etc / "passwords.d" / BATCH_ID):
        secret.write_text("secret\n")
        secret.chmod(0o644)
        os.chown(secret, *unprivileged())
    return etc


def run_setup(
    ns: Namespace, etc: Path, tmp_path: Path, path: str = SBIN_PATH, metadata: str = "ec2", **extra: str
) -> subprocess.CompletedProcess[str]:
    """The real setup script of an ``metadata`` batch, as root inside ``ns``."""
    script = tmp_path / "csctl-vm-setup"
    script.write_text(setup_script(Batch(BATCH_ID, "t", "H", metadata)))
    env = {"PATH": path, "CSCTL_CONDOR_ETC": str(etc), "CSCTL_NO_START": "1", "CSCTL_FIREWALL": "1", **extra}
    return ns.run("sh", str(script), env=env)


def assert_only_root_reaches(ns: Namespace) -> None:
    container = ns.read_user_data(container=True)
    assert container.returncode == 7, container  # curl: could not connect (refused)
    for address in (IMDS, IMDS6):
        job = ns.read_user_data(address, as_user=True)
        assert job.returncode == 7, (address, job)  # curl: could not connect (refused)
        assert "tokens.d" not in job.stdout
        root = ns.read_user_data(address)
        assert root.returncode == 0, (address, root.stderr)
        assert root.stdout.startswith("#cloud-config") and "/etc/condor/tokens.d/csctl-vm" in root.stdout


def host_ruleset() -> str:
    nft = shutil.which("nft", path=SBIN_PATH)
    if nft is None:
        return ""
    return subprocess.run([nft, "list", "ruleset"], capture_output=True, text=True, check=False).stdout


def test_imdsv2_launch_index_then_only_root_reaches_the_service(namespace, vm, tmp_path):
    if shutil.which("nft", path=SBIN_PATH) is None:
        pytest.skip("nft is not installed")
    host_before = host_ruleset()
    ns = namespace(tokens="required", launch_index=2)
    # before the script, any user reads the user-data and its token: what the rule prevents
    assert ns.read_user_data(as_user=True).returncode == 0
    assert ns.read_user_data(container=True).returncode == 0
    sent = len(ns.requests())
    result = run_setup(ns, vm, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-2"\n'
    assert (vm / "config.d" / "51-csctl-id.conf").stat().st_mode & 0o777 == 0o644
    # the index was read with IMDSv2: a token PUT, then the GET carrying it
    script_requests = ns.requests()[sent:]
    assert [(r["method"], r["path"], r["status"]) for r in script_requests] == [
        ("PUT", "/latest/api/token", 200),
        ("GET", "/latest/meta-data/ami-launch-index", 200),
    ]
    assert script_requests[0]["ttl"] == "60" and script_requests[1]["token"] is True
    # the rule, by nft, for IPv4 and IPv6
    table = ns.run("nft", "list", "table", "inet", "csctl_metadata")
    assert table.returncode == 0 and "skuid != 0" in table.stdout and IMDS6 in table.stdout
    assert_only_root_reaches(ns)
    # the secrets: root's alone
    for secret in (vm / "tokens.d" / "csctl-vm", vm / "passwords.d" / BATCH_ID):
        info = secret.stat()
        assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o600, 0, 0)
    # run again (cloud-init's bootcmd and runcmd both do): still one table, one rule each
    assert run_setup(ns, vm, tmp_path).returncode == 0
    again = ns.run("nft", "list", "ruleset").stdout
    assert again.count("table inet csctl_metadata") == 1 and again.count("reject") == 4
    assert host_ruleset() == host_before


def test_imdsv1_when_the_service_gives_no_token(namespace, vm, tmp_path):
    ns = namespace(tokens="none", launch_index=5)
    result = run_setup(ns, vm, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-5"\n'
    assert [(r["method"], r["path"], r["status"], r["token"]) for r in ns.requests()] == [
        ("PUT", "/latest/api/token", 404, False),
        ("GET", "/latest/meta-data/ami-launch-index", 200, False),
    ]


def test_openstack_launch_index_from_the_metadata_service(namespace, vm, tmp_path):
    ns = namespace(launch_index=3)
    result = run_setup(ns, vm, tmp_path, metadata="openstack")
    assert result.returncode == 0, result.stderr
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-3"\n'
    assert [r["path"] for r in ns.requests()] == ["/openstack/latest/meta_data.json"]


def test_openstack_launch_index_from_a_config_drive(namespace, vm, tmp_path):
    """A config drive wins over the network. The drive is an ext4 image labelled config-2;
    a stand-in ``blkid`` names it (the host's own devices are never scanned), the real
    ``mount`` mounts it read-only in the private mount namespace ``ip netns exec`` makes."""
    mkfs = shutil.which("mkfs.ext4", path=SBIN_PATH)
    if mkfs is None or not Path("/dev/loop-control").exists():
        pytest.skip("needs mkfs.ext4 and loop devices")
    tree = tmp_path / "drive" / "openstack" / "latest"
    tree.mkdir(parents=True)
    (tree / "meta_data.json").write_text('{"uuid": "u", "launch_index": 7, "name": "h"}')
    image = tmp_path / "config-2.img"
    subprocess.run(
        [mkfs, "-q", "-L", "config-2", "-d", str(tmp_path / "drive"), str(image), "4M"],
        check=True,
        timeout=60,
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "blkid").write_text(
        f'#!/bin/sh\n[ "$*" = "-t LABEL=config-2 -o device" ] && echo {image} && exit 0\nexit 2\n'
    )
    (bin_dir / "blkid").chmod(0o755)
    temp = tmp_path / "temp"
    temp.mkdir()
    ns = namespace(launch_index=3)
    result = run_setup(
        ns, vm, tmp_path, path=f"{bin_dir}:{SBIN_PATH}", metadata="openstack", TMPDIR=str(temp)
    )
    assert result.returncode == 0, result.stderr
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-7"\n'
    assert ns.requests() == []  # the network was not asked
    assert list(temp.iterdir()) == []  # unmounted, its mount point removed


def test_iptables_when_there_is_no_nft(namespace, vm, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("iptables", "ip6tables"):
        found = shutil.which(tool, path=SBIN_PATH)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    ns = namespace()
    result = run_setup(ns, vm, tmp_path, path=f"{bin_dir}:{BARE_PATH}")
    assert result.returncode == 0, result.stderr
    assert ns.run("nft", "list", "table", "inet", "csctl_metadata").returncode != 0  # not by nft
    for tool, address in (("iptables", IMDS), ("ip6tables", IMDS6)):
        output = ns.run(tool, "-S", "OUTPUT").stdout
        assert output.count("-m owner --socket-exists ! --uid-owner 0 -j REJECT") == 2, output
        assert address in output and "-p tcp" in output and "tcp-reset" in output
        forward = ns.run(tool, "-S", "FORWARD").stdout
        assert forward.count("-j REJECT") == 2 and address in forward, forward
    assert_only_root_reaches(ns)
    assert run_setup(ns, vm, tmp_path, path=f"{bin_dir}:{BARE_PATH}").returncode == 0
    for chain in ("OUTPUT", "FORWARD"):
        assert ns.run("iptables", "-S", chain).stdout.count("REJECT") == 2  # not added twice


def test_no_firewall_tool_fails_closed(namespace, vm, tmp_path):
    if any(shutil.which(tool, path=BARE_PATH) for tool in ("nft", "iptables")):
        pytest.skip(f"nft or iptables is on {BARE_PATH}")
    ns = namespace()
    result = run_setup(ns, vm, tmp_path, path=BARE_PATH)
    assert result.returncode == 1
    assert result.stderr == (
        f"csctl: cannot keep jobs from the metadata service ({IMDS}): neither nft nor iptables "
        "is installed; HTCondor stopped\n"
    )
    assert not (vm / "config.d" / "51-csctl-id.conf").exists()
    assert ns.requests() == []  # the index is not even read
    # a site may choose to leave the service open, and is told so
    opened = run_setup(ns, vm, tmp_path, path=BARE_PATH, CSCTL_METADATA_OPEN="1")
    assert opened.returncode == 0 and opened.stderr == OPEN_LINE
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-2"\n'
    assert ns.read_user_data(as_user=True).returncode == 0


def test_cloud_init_bootcmd_installs_the_rule_alone(namespace, vm, tmp_path):
    if shutil.which("nft", path=SBIN_PATH) is None:
        pytest.skip("nft is not installed")
    ns = namespace()
    user_data = yaml.safe_load(render_user_data(CONFIG, Batch(BATCH_ID, "t", "H", "ec2"), KEY, NOW))
    [bootcmd] = user_data["bootcmd"]
    assert bootcmd[3:] == ["csctl-vm-setup", "--firewall-only"]
    env = {"PATH": SBIN_PATH, "CSCTL_CONDOR_ETC": str(vm), "CSCTL_NO_START": "1", "CSCTL_FIREWALL": "1"}
    result = ns.run(*bootcmd, env=env)
    assert result.returncode == 0, result.stderr
    assert_only_root_reaches(ns)
    assert not (vm / "config.d" / "51-csctl-id.conf").exists()  # the firewall only
    assert (vm / "tokens.d" / "csctl-vm").stat().st_mode & 0o777 == 0o644  # untouched too


def test_csctl_host_runs_never_touch_a_firewall(namespace, vm, tmp_path):
    """As the local driver and the test bed's VM player run it: index given, own etc dir."""
    ns = namespace()
    script = tmp_path / "csctl-vm-setup"
    script.write_text(setup_script(Batch(BATCH_ID, "t", "H", "none")))
    env = {"PATH": SBIN_PATH, "CSCTL_LAUNCH_INDEX": "4", "CSCTL_CONDOR_ETC": str(vm), "CSCTL_NO_START": "1"}
    result = ns.run("sh", str(script), env=env)
    assert result.returncode == 0, result.stderr
    assert (vm / "config.d" / "51-csctl-id.conf").read_text() == f'CsctlId = "{BATCH_ID}-4"\n'
    assert ns.run("nft", "list", "ruleset").stdout.strip() == ""
    assert "owner" not in ns.run("iptables", "-S", "OUTPUT").stdout
    assert ns.read_user_data(as_user=True).returncode == 0
