"""A stand-in for a cloud's instance metadata service, for tests of csctl's VM setup script.

Speaks the parts a csctl VM uses: EC2's IMDSv1 (plain GET) and IMDSv2 (a session token
from ``PUT /latest/api/token``, then GETs carrying it), ``ami-launch-index`` and
``user-data``, and OpenStack's ``openstack/latest/meta_data.json``. Each request is
appended to a log as one JSON line, so a test can tell which flow a client used.

Run it where the real one would be, inside a network namespace::

    ip netns exec NS python -m testbed.metadata_server --address 169.254.169.254 \\
        --address fd00:ec2::254 --launch-index 2 --user-data FILE --tokens required --log requests.jsonl

``--tokens``: ``optional`` (IMDSv1 and v2, EC2's default), ``required`` (v2 only, as with
``HttpTokens=required``), ``none`` (v1 only: the token PUT is unknown, as on an
EC2-compatible cloud without IMDSv2). It prints ``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"


@dataclass
class Metadata:
    """What the service tells the VM, and how strict it is about tokens."""

    launch_index: int
    user_data: bytes
    tokens: str = "optional"  # "optional", "required" or "none"
    log: Path | None = None
    issued: set[str] = field(default_factory=set)

    def documents(self) -> dict[str, bytes]:
        """The served paths and their bodies."""
        meta = {"uuid": "00000000-0000-0000-0000-000000000000", "launch_index": self.launch_index}
        return {
            "/latest/meta-data/ami-launch-index": str(self.launch_index).encode(),
            "/latest/user-data": self.user_data,
            "/openstack/latest/meta_data.json": json.dumps(meta).encode(),
            "/openstack/latest/user_data": self.user_data,
        }


class Handler(BaseHTTPRequestHandler):
    """One request to the metadata service."""

    server: MetadataServer

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        """IMDSv2: hand out a session token for a PUT naming its lifetime."""
        meta = self.server.metadata
        if self.path != TOKEN_PATH or meta.tokens == "none":
            return self._answer(404, b"")
        if not self.headers.get(TTL_HEADER, "").isdigit():
            return self._answer(400, b"")
        token = secrets.token_urlsafe(24)
        meta.issued.add(token)
        self._answer(200, token.encode())

    def do_GET(self) -> None:  # noqa: N802
        """A metadata document; with IMDSv2 the token must be one this server issued."""
        meta = self.server.metadata
        token = self.headers.get(TOKEN_HEADER)
        if meta.tokens != "none" and token is not None and token not in meta.issued:
            return self._answer(401, b"")
        if meta.tokens == "required" and token is None:
            return self._answer(401, b"")
        body = meta.documents().get(self.path)
        self._answer(404, b"") if body is None else self._answer(200, body)

    def _answer(self, status: int, body: bytes) -> None:
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, status: int) -> None:
        log = self.server.metadata.log
        if log is None:
            return
        entry = {
            "method": self.command,
            "path": self.path,
            "status": status,
            "token": self.headers.get(TOKEN_HEADER) is not None,
            "ttl": self.headers.get(TTL_HEADER),
        }
        with log.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the request log is the record."""


class MetadataServer(ThreadingHTTPServer):
    """An HTTP server holding the :class:`Metadata` it serves."""

    def __init__(self, address: tuple[str, int], metadata: Metadata) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.metadata = metadata


def main(argv: list[str] | None = None) -> int:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", help="listen here (repeatable; 169.254.169.254)")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--launch-index", type=int, default=0)
    parser.add_argument("--user-data", type=Path, help="file whose bytes are the user-data")
    parser.add_argument("--tokens", choices=("optional", "required", "none"), default="optional")
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    user_data = args.user_data.read_bytes() if args.user_data else b""
    metadata = Metadata(args.launch_index, user_data, args.tokens, args.log)
    servers = [MetadataServer((a, args.port), metadata) for a in args.address or ["169.254.169.254"]]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
