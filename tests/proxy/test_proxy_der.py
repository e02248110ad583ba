"""proxyCertInfo bytes: exactly what grid-proxy-init writes (read from its proxies)."""

from __future__ import annotations

import pytest

from csctl.proxy.der import DerError, decode_proxy_cert_info, encode_proxy_cert_info

# The extension values of proxies made by grid-proxy-init 7.3 (Debian 12).
GPI_FULL = "300c300a06082b06010505071501"
GPI_LIMITED = "300f300d060b2b060104019b5001010109"


def test_full_proxy_bytes_match_grid_proxy_init() -> None:
    assert encode_proxy_cert_info("1.3.6.1.5.5.7.21.1", None).hex() == GPI_FULL


def test_limited_proxy_bytes_match_grid_proxy_init() -> None:
    assert encode_proxy_cert_info("1.3.6.1.4.1.3536.1.1.1.9", None).hex() == GPI_LIMITED


@pytest.mark.parametrize("path_length", [0, 1, 127, 128, 255, 256, 70000])
def test_path_length_round_trips(path_length: int) -> None:
    data = encode_proxy_cert_info("1.3.6.1.5.5.7.21.1", path_length)
    assert decode_proxy_cert_info(data) == ("1.3.6.1.5.5.7.21.1", path_length)


def test_decodes_grid_proxy_init_limited() -> None:
    decoded = decode_proxy_cert_info(bytes.fromhex(GPI_LIMITED))
    assert decoded == ("1.3.6.1.4.1.3536.1.1.1.9", None)


def test_decodes_a_policy_octet_string() -> None:
    data = bytes.fromhex("3011300f06082b060105050715000403616263")
    assert decode_proxy_cert_info(data) == ("1.3.6.1.5.5.7.21.0", None)


@pytest.mark.parametrize(
    "hexdata", ["", "30", "300c300a06082b060105050715", "3003020101", "020101", GPI_FULL + "00"]
)
def test_refuses_malformed(hexdata: str) -> None:
    with pytest.raises(DerError):
        decode_proxy_cert_info(bytes.fromhex(hexdata))
