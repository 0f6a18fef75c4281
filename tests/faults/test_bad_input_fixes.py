"""One test per bad-input bug the fuzzing found, each failing before its fix.

Every one of these crashed a whole batch (HTTP 500 / gRPC INTERNAL, or a traceback from
``spanledger events import``) instead of rejecting the one bad span or line, or let a bad count through.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from spanledger.billing.db import make_session_factory
from spanledger.billing.errors import InvalidEventError
from spanledger.billing.event_files import import_lines
from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord
from spanledger.billing.usage_event import UsageEvent, event_from_json, validate_event
from spanledger.exporter.errors import PayloadError
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import MappingSettings, map_span, map_spans, relevant_attribute_keys
from spanledger.exporter.otlp_decoding import decode_json
from spanledger.exporter.spans import SpanRecord

SPAN_KEYS, RESOURCE_KEYS = relevant_attribute_keys(MappingSettings())
NOW = datetime(2026, 11, 5, 12, tzinfo=UTC)


def _event(key: str, **fields: object) -> UsageEvent:
    return UsageEvent(dedupe_key=key, occurred_at=NOW, input_tokens=10, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"customer_external_id": "acme\ud800"}, "customer_external_id is not valid UTF-8"),
        ({"request_model": "\udfffgpt"}, "request_model is not valid UTF-8"),
        ({"metadata": {"service.name": "svc\ud800"}}, "metadata is not valid UTF-8"),
        ({"metadata": {"nested": [{"k\udc00": 1}]}}, "metadata is not valid UTF-8"),
        ({"trace_id": "f" * 40}, "trace_id must be a string of at most 32"),
        ({"span_id": 7}, "span_id must be a string of at most 16"),
        ({"span_id": "00\x00"}, "span_id contains a NUL character"),
    ],
)
def test_text_no_database_can_store_is_rejected_by_the_contract(fields, reason):
    with pytest.raises(InvalidEventError, match=reason):
        validate_event(_event("k", **fields))


@pytest.mark.parametrize("key", ["dedupe\x00key", "dedupe\ud800key"])
def test_a_dedupe_key_no_database_can_store_is_rejected(key):
    with pytest.raises(InvalidEventError, match="dedupe_key"):
        validate_event(_event(key))


def test_ingest_rejects_unstorable_text_and_keeps_the_rest_of_the_batch(session):
    batch = [
        _event("good-1", customer_external_id="acme"),
        _event("bad-1", customer_external_id="acme\ud800"),
        _event("bad-2", metadata={"service.name": "svc\ud800"}),
        _event("bad-3", trace_id="f" * 40),
        _event("bad\x00-4"),
        _event("good-2", customer_external_id="globex"),
    ]
    result = ingest(session, batch)
    session.commit()
    assert result.inserted == 2
    assert [r.index for r in result.rejected] == [1, 2, 3, 4]
    assert all(r.reason for r in result.rejected)
    assert sorted(session.scalars(select(EventRecord.dedupe_key))) == ["good-1", "good-2"]


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_outside_utc_range_is_an_invalid_event_not_an_overflow(stamp):
    with pytest.raises(InvalidEventError, match="out of range"):
        event_from_json({"dedupe_key": "k", "occurred_at": stamp})


def test_events_import_reports_unusable_lines_and_imports_the_rest(engine):
    good = {"dedupe_key": "line-1", "occurred_at": "2026-11-01T00:00:00Z", "input_tokens": 5}
    lines = [
        json.dumps(good),
        '{"dedupe_key": "line-2", "occurred_at": "2026-11-01T00:00:00Z", "input_tokens": ' + "9" * 5000 + "}",
        json.dumps({"dedupe_key": "line-3", "occurred_at": "0001-01-01T00:00:00+01:00"}),
        json.dumps({**good, "dedupe_key": "line-4", "customer_external_id": "x\ud800"}),
        json.dumps({**good, "dedupe_key": "line-5"}),
    ]
    report = import_lines(make_session_factory(engine), lines)
    assert report.inserted == 2
    assert [bad.line for bad in report.bad_lines] == [2, 3, 4]
    assert "4300 digits" in report.bad_lines[0].reason
    assert "out of range" in report.bad_lines[1].reason
    assert "not valid UTF-8" in report.bad_lines[2].reason


def test_an_otlp_json_number_beyond_pythons_digit_limit_is_a_payload_error():
    body = b'{"resourceSpans": [], "x": ' + b"9" * 5000 + b"}"
    with pytest.raises(PayloadError, match="not usable JSON"):
        decode_json(body, ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)


def _span(**attributes: object) -> SpanRecord:
    return SpanRecord(
        trace_id="1" * 32,
        span_id="2" * 16,
        name="chat",
        start_time_unix_nano=1_790_000_000_000_000_000,
        end_time_unix_nano=1_790_000_000_000_001_000,
        attributes={"gen_ai.provider.name": "openai", **attributes},  # type: ignore[dict-item]
    )


@pytest.mark.parametrize("text", ["²", "--5", "١٢", "9" * 40])
def test_digit_like_text_that_is_not_an_ascii_whole_number_is_rejected_not_a_crash(text):
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "1" * 32,
                                    "spanId": "2" * 16,
                                    "endTimeUnixNano": text,
                                    "startTimeUnixNano": "1790000000000000000",
                                    "attributes": [
                                        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": text}},
                                    ],
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()
    spans = decode_json(body, ReceiverLimits(), SPAN_KEYS, RESOURCE_KEYS)
    assert spans[0].attributes["gen_ai.usage.input_tokens"] == text  # kept as text for the mapping
    result = map_spans(spans)
    assert [r.reason for r in result.rejected] == [
        f"span attribute gen_ai.usage.input_tokens must be a whole number, not {text!r}"
    ]
    with pytest.raises(InvalidEventError, match="must be a whole number"):
        map_span(_span(**{"gen_ai.usage.output_tokens": text}))


@pytest.mark.parametrize(
    ("total", "reason"), [(-1, "total_tokens is negative"), (10**12, "total_tokens is absurdly large")]
)
def test_a_negative_or_absurd_total_is_rejected_not_billed_as_unknown(total, reason):
    with pytest.raises(InvalidEventError, match=reason):
        map_span(_span(**{"llm.usage.total_tokens": total}))
    with pytest.raises(InvalidEventError, match=reason):
        map_span(_span(**{"gen_ai.usage.input_tokens": 5, "gen_ai.usage.total_tokens": total}))


def test_a_usage_count_over_the_length_limit_rejects_the_span_instead_of_ignoring_it():
    span = SpanRecord(
        trace_id="1" * 32,
        span_id="2" * 16,
        name="chat",
        start_time_unix_nano=1_790_000_000_000_000_000,
        end_time_unix_nano=1_790_000_000_000_001_000,
        attributes={"gen_ai.provider.name": "openai"},
        oversized_attributes=frozenset({"gen_ai.usage.input_tokens"}),
    )
    with pytest.raises(InvalidEventError, match=r"gen_ai\.usage\.input_tokens is longer than"):
        map_span(span)
