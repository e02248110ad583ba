"""Just enough DER to write and read the RFC 3820 proxyCertInfo extension.

    ProxyCertInfo ::= SEQUENCE {
        pCPathLenConstraint   INTEGER (0..MAX) OPTIONAL,
        proxyPolicy           SEQUENCE {
            policyLanguage    OBJECT IDENTIFIER,
            policy            OCTET STRING OPTIONAL } }

``cryptography`` has no type for it, so the bytes are built by hand, exactly as
grid-proxy-init writes them (full proxy: ``300c300a06082b06010505071501``).
"""

from __future__ import annotations

_SEQUENCE, _INTEGER, _OID, _OCTETS = 0x30, 0x02, 0x06, 0x04


class DerError(ValueError):
    """The bytes are not a well-formed proxyCertInfo."""


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


def _oid_body(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def _int_body(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def encode_proxy_cert_info(language: str, path_length: int | None) -> bytes:
    """DER of a proxyCertInfo with policy language ``language`` (dotted) and no policy."""
    policy = _tlv(_SEQUENCE, _tlv(_OID, _oid_body(language)))
    head = b"" if path_length is None else _tlv(_INTEGER, _int_body(path_length))
    return _tlv(_SEQUENCE, head + policy)


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One TLV at ``pos``: (tag, value, position after it)."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    if pos + length > len(data):
        raise DerError("truncated")
    return tag, data[pos : pos + length], pos + length


def _decode_oid(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise DerError("bad object identifier")
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def decode_proxy_cert_info(data: bytes) -> tuple[str, int | None]:
    """(policy language, path length or None) from the DER of a proxyCertInfo."""
    tag, body, end = _read(data, 0)
    if tag != _SEQUENCE or end != len(data):
        raise DerError("not a SEQUENCE")
    tag, value, pos = _read(body, 0)
    path_length = None
    if tag == _INTEGER:
        if not value or value[0] & 0x80:
            raise DerError("bad path length")
        path_length = int.from_bytes(value, "big")
        tag, value, pos = _read(body, pos)
    if tag != _SEQUENCE or pos != len(body):
        raise DerError("no proxyPolicy")
    tag, oid, after = _read(value, 0)
    if tag != _OID:
        raise DerError("no policy language")
    if after != len(value):
        tag, _policy, after = _read(value, after)
        if tag != _OCTETS or after != len(value):
            raise DerError("bad policy")
    return _decode_oid(oid), path_length
