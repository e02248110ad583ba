"""The log redaction rules on the text the SDKs really log, and the filter on real loggers."""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Iterator

import pytest

from csctl.logredact import REDACTED, RedactingFilter, install, redact

JWT = "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJzdWIiOiJ2bS14QHAiLCJpc3MiOiJwIn0.c2lnbmF0dXJlX2J5dGVz-_x"
BLOB = base64.b64encode(bytes(range(256)) * 2).decode()  # 684 characters, with + and /

CASES = [
    # botocore.endpoint: "Making request for ... with params: %s" (a dict's repr)
    (
        "params: {'body': {'Action': 'RunInstances', 'UserData': 'I2Nsb3VkLWNvbmZpZwo=', 'MinCount': 1}}",
        "params: {'body': {'Action': 'RunInstances', 'UserData': '<redacted>', 'MinCount': 1}}",
    ),
    # botocore.endpoint: "Sending http request: %s" (headers as bytes)
    (
        "headers={'X-Amz-Date': b'20261130T050341Z', 'Authorization': b'AWS4-HMAC-SHA256 "
        "Credential=AKIAX/20261130/us-east-1/ec2/aws4_request, Signature=29d2f8'}>",
        "headers={'X-Amz-Date': b'20261130T050341Z', 'Authorization': b'<redacted>'}>",
    ),
    # keystoneauth.session: the request as a curl command line, the body as JSON
    (
        'curl -g -i -X POST http://n/v2.1/servers -H "Content-Type: application/json" '
        '-H "X-Auth-Token: {SHA256}0889381c" -d \'{"server": {"name": "b", "user_data": "I2Nsb3==", '
        '"min_count": 1}}\'',
        'curl -g -i -X POST http://n/v2.1/servers -H "Content-Type: application/json" '
        '-H "X-Auth-Token: <redacted>" -d \'{"server": {"name": "b", "user_data": "<redacted>", '
        '"min_count": 1}}\'',
    ),
    # keystoneauth.session: "RESP BODY: ..." of a create; an escaped quote stays inside the value
    (
        'RESP BODY: {"server": {"id": "9094", "adminPass": "39QV\\"nw"}}',
        'RESP BODY: {"server": {"id": "9094", "adminPass": "<redacted>"}}',
    ),
    (
        "Action=RunInstances&UserData=I2Nsb3%3D&MaxCount=2",
        "Action=RunInstances&UserData=<redacted>&MaxCount=2",
    ),
    ("user_data: abc\nnext: 1", "user_data: <redacted>\nnext: 1"),
    ("password='hunter2", "password='<redacted>'"),  # a message cut short
    ("Authorization: Bearer abc def\r\nAccept: */*", "Authorization: <redacted>\r\nAccept: */*"),
    ("X-Subject-Token: gAAAAAB", "X-Subject-Token: <redacted>"),
    (
        "b'<DescribeInstanceAttributeResponse><userData><value>I2Nsb3Vk</value></userData>'",
        "b'<DescribeInstanceAttributeResponse><userData><redacted></userData>'",
    ),
    ("<SessionToken>FwoGZXIvYXdzE</SessionToken>", "<SessionToken><redacted></SessionToken>"),
    (f"token: {JWT}\n", "token: <redacted>\n"),
    (f"content = {JWT}", "content = <redacted>"),
    (
        "key: -----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEI\\n-----END EC PRIVATE KEY-----\\n tail",
        "key: <redacted>\\n tail",
    ),
    ("cut: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg", "cut: <redacted>"),
    (f"content: {BLOB} end", "content: <redacted> end"),
    (f"{base64.urlsafe_b64encode(bytes(range(256))).decode()}", REDACTED),
    (f"body=x&Blob={BLOB.replace('+', '%2B').replace('/', '%2F')}&y=1", "body=x&Blob=<redacted>&y=1"),
]

HARMLESS = [
    "hermes: batch hermes-ab12cd34: 3 of 3 started",
    "Event before-parameter-build.ec2.RunInstances: calling handler <function base64_encode_user_data>",
    "GET call to compute for http://n/v2.1/servers/detail?name=%5Ehermes-ab12cd34 used request id req-1",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a hash, not a secret
    "signature: 29d2f831ea1ad93338698085bb213a492910a347e809340e9c846dde62873e11",
    "A" * 199 + " is not long enough to be a payload",
    "password_expires_at: 2026-01-01",
    "{'Tags': [{'Key': 'csctl-joined', 'Value': '2026-03-04T05:06:07Z'}]}",
    "",
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # a record passing two handlers is filtered twice


@pytest.mark.parametrize("text", HARMLESS)
def test_other_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_large_response_body_is_redacted_in_linear_time() -> None:
    # moto's DescribeImages answer is over a megabyte; a real debug log must not stall on it
    body = "<item><imageId>ami-0123</imageId><name>image with a long name</name></item>" * 20_000
    started = time.monotonic()
    assert redact(body + f"<userData>{BLOB}</userData>") == body + "<userData><redacted></userData>"
    assert redact("A" * 2_000_000) == REDACTED
    assert redact(("a" * 199 + " ") * 10_000) == ("a" * 199 + " ") * 10_000
    assert time.monotonic() - started < 10


# -- the filter on real loggers -------------------------------------------------


@pytest.fixture
def root_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger at DEBUG with one handler writing into the returned buffer (only)."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    monkeypatch.setattr(root, "handlers", [handler])
    level = root.level
    root.setLevel(logging.DEBUG)
    yield stream
    root.setLevel(level)


def test_install_redacts_what_any_logger_sends_to_the_root_handlers(root_output: io.StringIO) -> None:
    install()

    logging.getLogger("botocore.endpoint").debug(
        "Making request for %s with params: %s", "OperationModel(name=RunInstances)", {"UserData": "I2Nsb3=="}
    )

    assert root_output.getvalue() == (
        "botocore.endpoint DEBUG Making request for OperationModel(name=RunInstances) "
        "with params: {'UserData': '<redacted>'}\n"
    )


def test_install_is_idempotent_and_covers_every_root_handler(root_output: io.StringIO) -> None:
    root = logging.getLogger()
    second = logging.StreamHandler(io.StringIO())
    root.addHandler(second)

    install()
    install()

    for handler in root.handlers:
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


def test_the_record_keeps_no_args_with_secrets(root_output: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger().addHandler(Keep())
    install()

    logging.getLogger("keystoneauth.session").debug("REQ: %s %s", "POST", f'-d \'{{"user_data": "{BLOB}"}}\'')

    (record,) = seen
    assert (record.msg, record.args) == ('REQ: POST -d \'{"user_data": "<redacted>"}\'', None)
    assert BLOB not in root_output.getvalue()


def test_tracebacks_are_redacted(root_output: io.StringIO) -> None:
    install()
    try:
        raise ValueError(f"Invalid UserData: '{BLOB}'")
    except ValueError:
        logging.getLogger("csctl").exception("boot failed, token %s", JWT)

    output = root_output.getvalue()
    assert "boot failed, token <redacted>" in output
    assert "ValueError: Invalid UserData: '<redacted>'" in output
    assert BLOB not in output and JWT not in output


def test_a_bad_format_string_is_still_redacted_and_does_not_raise(root_output: io.StringIO) -> None:
    install()

    logging.getLogger("x").debug("two %s %s", f"Authorization: Bearer {JWT}")

    output = root_output.getvalue()
    assert JWT not in output and "two %s %s" in output


def test_the_filter_never_drops_a_record() -> None:
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "plain %d", (1,), None)
    assert RedactingFilter().filter(record) is True
    assert (record.getMessage(), record.args) == ("plain 1", None)
