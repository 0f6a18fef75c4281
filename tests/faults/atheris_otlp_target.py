"""libFuzzer target (atheris) for OTLP decoding and span mapping; run by ``test_atheris_fuzz.py``.

Usage: ``python atheris_otlp_target.py [libFuzzer flags] [corpus dir]``. The first byte of an input picks
the format (even: protobuf, odd: OTLP/JSON), the rest is the body. Anything but a clean
:class:`PayloadError` from decoding, or any exception from mapping, is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["spanledger"]):
    from spanledger.billing.usage_event import validate_event
    from spanledger.exporter.errors import PayloadError
    from spanledger.exporter.limits import ReceiverLimits
    from spanledger.exporter.mapping import MappingSettings, map_spans, relevant_attribute_keys
    from spanledger.exporter.otlp_decoding import decode_json, decode_protobuf

SPAN_KEYS, RESOURCE_KEYS = relevant_attribute_keys(MappingSettings())
LIMITS = ReceiverLimits(max_decompressed_bytes=1 << 20, max_spans_per_request=2000)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    decode = decode_json if data[0] & 1 else decode_protobuf
    try:
        spans = decode(data[1:], LIMITS, SPAN_KEYS, RESOURCE_KEYS)
    except PayloadError as exc:
        if not str(exc):
            raise AssertionError("a refusal without a reason") from exc
        return
    result = map_spans(spans)
    if len(result.events) + len(result.rejected) + result.ignored != len(spans):
        raise AssertionError("a span is neither an event, rejected nor ignored")
    for rejected in result.rejected:
        if not rejected.reason:
            raise AssertionError("a rejection without a reason")
    for event in result.events:
        validate_event(event)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
