"""pytest plugin: an AWS Service Quotas API on loopback (fixture ``service_quotas``).

moto's server answers Service Quotas for VPC only, and EC2's vCPU limits live there. This
server speaks the API's own wire protocol (AWS JSON 1.1, ``X-Amz-Target:
ServiceQuotasV20190624.ListServiceQuotas``, NextToken pages) over HTTP on 127.0.0.1,
so boto3 reaches it exactly as it reaches AWS, through ``endpoint_url``. It serves the
account's EC2 quotas set in ``quotas`` (code -> value), a few pages at a time, and can be
made to refuse every call with an error code (``error``, e.g. AWS's AccessDeniedException
or TooManyRequestsException) or to hang (``hang``).
Signatures are not checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TARGET_PREFIX = "ServiceQuotasV20190624."
PAGE = 2  # quotas per page: small, so that every test crosses a page boundary
# quotas csctl does not read, listed as AWS lists them beside the vCPU limits
OTHER_QUOTAS = {
    "L-0263D0A3": ("EC2-VPC Elastic IPs", 5.0),
    "L-E4BF28E0": ("Amazon FPGA images (AFIs)", 100.0),
}


class ServiceQuotasServer:
    """The server; a context manager that stops it on exit."""

    def __init__(self) -> None:
        self.quotas: dict[str, tuple[str, float]] = dict(OTHER_QUOTAS)
        self.error: str | None = None  # the code every call is refused with
        self.hang = threading.Event()  # set: every call waits until the server stops
        self.calls: list[str] = []
        self._stopped = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def set_vcpus(self, code: str, name: str, value: float) -> None:
        """Give the account the quota ``code`` (a vCPU limit) at ``value``."""
        self.quotas[code] = (name, value)

    def __enter__(self) -> ServiceQuotasServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(target)
        if self.hang.is_set():
            self._stopped.wait(60)
        if self.error == "AccessDeniedException":
            message = f"User is not authorized to perform: servicequotas:{target}"
            return 400, {"__type": self.error, "message": message}
        if self.error is not None:
            return 400, {"__type": self.error, "message": "refused by the test"}
        if target != "ListServiceQuotas":
            return 400, {"__type": "UnknownOperationException", "message": target}
        if body.get("ServiceCode") != "ec2":
            return 400, {"__type": "NoSuchResourceException", "message": "no such service"}
        start = int(body.get("NextToken") or 0)
        codes = sorted(self.quotas)[start : start + PAGE]
        page: dict[str, Any] = {"Quotas": [self._quota(code) for code in codes]}
        if start + PAGE < len(self.quotas):
            page["NextToken"] = str(start + PAGE)
        return 200, page

    def _quota(self, code: str) -> dict[str, Any]:
        name, value = self.quotas[code]
        arn = f"arn:aws:servicequotas:us-east-1:123456789012:ec2/{code}"
        return {"ServiceCode": "ec2", "QuotaCode": code, "QuotaName": name, "Value": value, "QuotaArn": arn}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                target = self.headers.get("X-Amz-Target", "").removeprefix(TARGET_PREFIX)
                status, answer = server._answer(target, body)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (a hang test)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def service_quotas() -> Iterator[ServiceQuotasServer]:
    """A Service Quotas API on loopback for one test, with no vCPU limit set yet."""
    with ServiceQuotasServer() as server:
        yield server
