"""pytest plugin: a real EC2 API on loopback (fixtures ``ec2_server``, ``ec2``, ``ec2_auth_server``).

The server is moto's server mode (``python -m moto.server``) in its own process, so
boto3 talks to it over HTTP exactly as to AWS, through ``endpoint_url``. Instances
are ``running`` at once, and capacity or limit errors never happen by themselves:
inject them with a botocore ``before-send`` hook (``error_response`` builds one).
moto starts exactly MinCount instances where AWS starts up to MaxCount:
``grant_max_count`` makes it grant whole batches, as AWS does when it has capacity.

``ec2_server`` lives for the session; ``ec2`` resets it for one test and points the
AWS SDK at a throw-away config holding the profile ``ec2_server.profile`` (fake
keys), with every other AWS_* variable removed and instance metadata disabled.
``ec2_auth_server`` checks signatures against moto's IAM, which knows no keys at
all: every call is refused with a real AuthFailure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
PROFILE = "csctl-test"
ACCESS_KEY_ID = "AKIACSCTLTESTBED0000"  # fake, shaped like a real one
SECRET_ACCESS_KEY = "csctl-testbed-fake-secret-key"
# Refuse unknown AMIs, instance types and key pairs, as AWS does (moto accepts them by default).
VALIDATION_ENV = {
    "MOTO_ENABLE_AMI_VALIDATION": "true",
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
    "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
}
START_TIMEOUT = 20.0  # seconds; moto starts in well under one


def free_port() -> int:
    """A TCP port nothing listens on at this moment (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """A ``moto.server`` process on 127.0.0.1; a context manager that stops it on exit."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **(env or {})}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._process = subprocess.Popen(
            cmd, env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError(f"moto server not answering on {self.endpoint} after {START_TIMEOUT} s")

    def reset(self) -> None:
        """Forget every resource (moto's ``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


class EC2Server:
    """Handle on the session's moto server, handed out by ``ec2_server`` and ``ec2``."""

    region = REGION
    profile = PROFILE

    def __init__(self, server: MotoServer, aws_dir: Path) -> None:
        self.server = server
        self.aws_dir = aws_dir
        self._client: Any = None
        self._image_id: str | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the ``endpoint_url`` of the EC2 API."""
        return self.server.endpoint

    def reset(self) -> None:
        """Forget every instance, tag and request made so far."""
        self.server.reset()

    def client(self) -> Any:
        """A plain boto3 EC2 client on this server, for tests to look behind a driver."""
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "ec2",
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
            )
        return self._client

    def image_id(self) -> str:
        """An AMI the server knows: moto ships public Amazon images, the same after each reset."""
        if self._image_id is None:
            images = self.client().describe_images(Owners=["amazon"])["Images"]
            self._image_id = sorted(img["ImageId"] for img in images)[0]
        return self._image_id

    def env(self) -> dict[str, str]:
        """AWS_* variables pointing the SDK at this bed's config files and nothing else."""
        return {
            "AWS_CONFIG_FILE": str(self.aws_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_dir / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def write_aws_config(directory: Path) -> Path:
    """An AWS config and credentials file defining the profile ``PROFILE`` (fake keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(f"[profile {PROFILE}]\nregion = {REGION}\n")
    (directory / "credentials").write_text(
        f"[{PROFILE}]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET_ACCESS_KEY}\n"
    )
    return directory


def error_response(code: str, message: str, status: int = 400) -> Any:
    """An EC2 error answer, for a ``before-send`` hook to return instead of sending."""
    from botocore.awsrequest import AWSResponse

    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>injected</RequestID></Response>"
    ).encode()
    return AWSResponse("https://injected", status, {"Content-Type": "text/xml"}, _Raw(body))


def grant_max_count(client: Any) -> None:
    """Make moto start all MaxCount instances of a client's RunInstances calls.

    moto starts exactly MinCount instances; AWS starts as many as it can, up to
    MaxCount. Raising MinCount to MaxCount before signing makes moto behave like AWS
    with enough capacity; without this, moto plays a cloud granting one VM per call.
    """
    client.meta.events.register(
        "before-sign.ec2.RunInstances", _raise_min_count, unique_id="testbed-grant-max-count"
    )


def _raise_min_count(request: Any, **_: Any) -> None:
    if isinstance(request.data, dict) and "MaxCount" in request.data:
        request.data["MinCount"] = request.data["MaxCount"]


class _Raw:
    """The one method of a urllib3 response that AWSResponse reads."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture(scope="session")
def ec2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EC2Server]:
    """A moto EC2 server for the whole session; use ``ec2`` in tests for a clean one."""
    aws_dir = write_aws_config(tmp_path_factory.mktemp("aws"))
    with MotoServer(env=VALIDATION_ENV) as server:
        yield EC2Server(server, aws_dir)


@pytest.fixture
def ec2(ec2_server: EC2Server, monkeypatch: pytest.MonkeyPatch) -> EC2Server:
    """The session's EC2 server, reset, with the SDK's environment confined to the test bed."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in ec2_server.env().items():
        monkeypatch.setenv(name, value)
    ec2_server.reset()
    return ec2_server


@pytest.fixture(scope="session")
def ec2_auth_server() -> Iterator[MotoServer]:
    """A moto server that authenticates every request against its (empty) IAM."""
    with MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        yield server
