"""Hand-made protobuf wire encoding for the decoding tests: what no SDK sends, byte by byte.

Plain functions (this module holds no tests), shared by tests/exporter and tests/faults; it sits in tests/
because pytest puts the folder of tests/conftest.py on ``sys.path`` whichever test folder runs.
"""

from __future__ import annotations

__all__ = ["field", "varint"]


def varint(value: int, extra: int = 0) -> bytes:
    """``value`` as a varint, padded with ``extra`` redundant continuation bytes (non-minimal but valid)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte | 0x80 if extra else byte)
            break
    for n in range(extra):
        out.append(0x80 if n < extra - 1 else 0x00)
    return bytes(out)


def field(number: int, payload: bytes, extra: int = 0) -> bytes:
    """Field ``number`` as length-delimited (wire type 2), its length padded with ``extra`` bytes."""
    return varint(number << 3 | 2) + varint(len(payload), extra) + payload
