"""The mapping rules on plain SpanRecords: billability, customer, dedupe key, time, rejections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.usage_event import MAX_DEDUPE_KEY_LENGTH
from spanledger.exporter.mapping import MappingSettings, dedupe_key_for, map_span, map_spans
from spanledger.exporter.spans import STATUS_ERROR, SpanRecord

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
END = 1_793_534_400_123_456_789  # 2026-11-01T12:00:00.123456789Z


def span(attributes=None, resource=None, **fields) -> SpanRecord:
    values = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "name": "chat gpt-4o",
        "start_time_unix_nano": END - 10**9,
        "end_time_unix_nano": END,
        "attributes": attributes if attributes is not None else {"gen_ai.usage.input_tokens": 10},
        "resource_attributes": resource or {},
        "scope_name": "test.scope",
    }
    values.update(fields)
    return SpanRecord(**values)


def test_usage_makes_a_span_billable_and_time_is_the_end_of_the_span():
    event = map_span(span())
    assert event is not None
    assert event.occurred_at == datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert (event.trace_id, event.span_id) == (TRACE, SPAN)
    assert event.dedupe_key == f"span:{TRACE}:{SPAN}"
    assert event.input_tokens == 10 and event.output_tokens is None


def test_a_model_call_without_usage_is_billable_with_unknown_counts():
    event = map_span(span({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}))
    assert event is not None
    assert (event.input_tokens, event.output_tokens) == (None, None)


def test_a_failed_model_call_without_usage_is_ignored():
    assert map_span(span({"gen_ai.operation.name": "chat"}, status_code=STATUS_ERROR)) is None


@pytest.mark.parametrize("operation", ["invoke_agent", "execute_tool", "create_agent"])
def test_aggregate_spans_are_ignored_even_with_summed_usage(operation):
    assert map_span(span({"gen_ai.operation.name": operation, "gen_ai.usage.input_tokens": 500})) is None


def test_spans_without_genai_usage_are_counted_as_ignored():
    result = map_spans([span({"http.request.method": "POST"}), span(), span({})])
    assert (len(result.events), result.ignored, result.rejected) == (1, 2, ())
    assert result.span_indexes == (1,)


def test_customer_comes_from_the_span_first_then_the_resource_then_configured_keys():
    settings = MappingSettings(customer_attributes=("enduser.id", "tenant.id"))
    both = span({"gen_ai.usage.input_tokens": 1, "customer.id": "span-cust"}, {"customer.id": "res-cust"})
    assert map_span(both, settings).customer_external_id == "span-cust"
    resource_only = span(
        {"gen_ai.usage.input_tokens": 1, "enduser.id": "user-1"}, {"customer.id": "res-cust"}
    )
    assert map_span(resource_only, settings).customer_external_id == "res-cust"
    fallback = span({"gen_ai.usage.input_tokens": 1}, {"tenant.id": "tenant-9"})
    assert map_span(fallback, settings).customer_external_id == "tenant-9"
    assert map_span(fallback).customer_external_id is None  # no fallback keys configured: unattributed
    numeric = span({"gen_ai.usage.input_tokens": 1, "customer.id": 42})
    assert map_span(numeric).customer_external_id == "42"
    blank = span({"gen_ai.usage.input_tokens": 1, "customer.id": "  "})
    assert map_span(blank).customer_external_id is None


def test_customer_settings_from_the_environment():
    settings = MappingSettings.from_environment(
        {"SPANLEDGER_CUSTOMER_ATTRIBUTES": " enduser.id, ,tenant.id "}
    )
    assert settings.customer_attributes == ("enduser.id", "tenant.id")


def test_dedupe_key_prefers_provider_and_response_id():
    attributes = {
        "gen_ai.usage.input_tokens": 1,
        "gen_ai.provider.name": "OpenAI",
        "gen_ai.response.id": "r1",
    }
    first = map_span(span(attributes))
    retried_elsewhere = map_span(span(attributes, trace_id="1" * 32, span_id="2" * 16))
    assert first.dedupe_key == retried_elsewhere.dedupe_key == "response:openai:r1"
    other_provider = map_span(span({**attributes, "gen_ai.provider.name": "anthropic"}))
    assert other_provider.dedupe_key != first.dedupe_key


def test_an_overlong_response_id_is_hashed_into_a_stable_key():
    key = dedupe_key_for("openai", "x" * 600, TRACE, SPAN)
    assert len(key) <= MAX_DEDUPE_KEY_LENGTH
    assert key == dedupe_key_for("openai", "x" * 600, "f" * 32, "e" * 16)


@pytest.mark.parametrize(
    "record, reason",
    [
        (span({"gen_ai.usage.input_tokens": "many"}), "whole number"),
        (span({"gen_ai.usage.input_tokens": True}), "boolean"),
        (span({"gen_ai.usage.input_tokens": 1.5}), "whole number"),
        (span({"gen_ai.usage.input_tokens": -3}), "negative"),
        (span({"gen_ai.usage.input_tokens": 1, "gen_ai.request.model": ("a", "b")}), "must be a string"),
        (span(trace_id="", span_id=""), "trace id"),
        (span(trace_id="0" * 32), "trace id"),
        (span(start_time_unix_nano=0, end_time_unix_nano=0), "time"),
        (span(oversized_attributes=frozenset({"customer.id"})), "customer.id is longer"),
        (span(oversized_resource_attributes=frozenset({"customer.id"})), "resource attribute customer.id"),
        (span({"gen_ai.usage.input_tokens": 1, "gen_ai.request.model": "m" * 300}), "longer than"),
    ],
)
def test_billable_spans_that_cannot_be_events_are_rejected_with_a_reason(record, reason):
    with pytest.raises(InvalidEventError, match=reason):
        map_span(record)
    result = map_spans([span(), record])
    assert len(result.events) == 1
    assert result.rejected[0].index == 1 and reason in result.rejected[0].reason


def test_counts_sent_as_strings_or_whole_floats_are_read():
    event = map_span(span({"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3.0}))
    assert (event.input_tokens, event.output_tokens) == (12, 3)


def test_a_response_id_identifies_a_span_even_without_valid_ids():
    event = map_span(
        span({"gen_ai.usage.input_tokens": 1, "gen_ai.response.id": "r"}, trace_id="", span_id="")
    )
    assert event.dedupe_key == "response::r"


def test_metadata_keeps_service_and_scope():
    event = map_span(
        span(
            {"gen_ai.usage.input_tokens": 1, "server.address": "api.openai.com", "secret.prompt": "x"},
            {"service.name": "chat", "deployment.environment.name": "prod", "host.name": "h"},
            scope_version="0.62.4",
        )
    )
    assert event.metadata == {
        "service.name": "chat",
        "deployment.environment.name": "prod",
        "server.address": "api.openai.com",
        "otel.scope.name": "test.scope",
        "otel.scope.version": "0.62.4",
        "span.name": "chat gpt-4o",
    }
