"""Every row of the dialect table, fed with spans from the real packages where they are installed.

The current OpenLLMetry (0.62.4) and the anthropic SDK's own tracing run against a fake HTTP transport
(httpx2.MockTransport: no network). Older spellings that no installable package still emits are produced
with the OpenTelemetry SDK directly, with the attribute names those packages used.
"""

from __future__ import annotations

import warnings

import anthropic
import httpx2
import openai
import pytest
from spanfactory import (
    make_spans,
    memory_provider,
    otlp_json,
    otlp_protobuf,
    records,
    unwrap_leftover_wrappers,
)

from spanledger.exporter import dialects
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import MappingSettings, map_span, map_spans, relevant_attribute_keys
from spanledger.exporter.otlp_decoding import decode_json, decode_protobuf

ANTHROPIC_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 30,
    },
}

OPENAI_COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 50,
        "completion_tokens": 20,
        "total_tokens": 70,
        "prompt_tokens_details": {"cached_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 5},
    },
}


def _anthropic_client(provider, payload=ANTHROPIC_MESSAGE) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=payload))
    return anthropic.Anthropic(
        api_key="test-key",
        http_client=httpx2.Client(transport=transport),
        open_telemetry={"tracer_provider": provider},
    )


def _anthropic_call(client: anthropic.Anthropic) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
        )


@pytest.fixture
def anthropic_sdk_spans():
    provider, exporter = memory_provider({"service.name": "chatbot", "customer.id": "acme"})
    _anthropic_call(_anthropic_client(provider))
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


@pytest.fixture
def openllmetry_anthropic_spans():
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    provider, exporter = memory_provider()
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        # The SDK's own tracing off, so only OpenLLMetry's span is recorded here.
        _anthropic_call(_anthropic_client(None).with_options(open_telemetry=False))
    finally:
        instrumentor.uninstrument()
        unwrap_leftover_wrappers("anthropic.resources")
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


@pytest.fixture
def openllmetry_openai_spans():
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    provider, exporter = memory_provider()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=OPENAI_COMPLETION))
        client = openai.OpenAI(api_key="test-key", http_client=httpx2.Client(transport=transport))
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    finally:
        instrumentor.uninstrument()
        unwrap_leftover_wrappers("openai.resources")
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


def _only_event(spans, settings=None):
    result = map_spans(records(spans), settings)
    assert result.rejected == ()
    assert len(result.events) == 1, result
    return result.events[0]


def test_anthropic_sdk_tracing_input_includes_cache_and_new_cache_write_spelling(anthropic_sdk_spans):
    [span] = anthropic_sdk_spans
    assert span.instrumentation_scope.name == "com.anthropic.sdk.python"
    event = _only_event(anthropic_sdk_spans)
    assert event.provider == "anthropic"
    assert event.operation == "chat"
    assert (event.input_tokens, event.cache_read_input_tokens, event.cache_write_input_tokens) == (
        142,
        100,
        30,
    )
    assert event.output_tokens == 7
    assert event.reasoning_tokens is None
    assert event.response_id == ANTHROPIC_MESSAGE["id"]
    assert event.dedupe_key == f"response:anthropic:{ANTHROPIC_MESSAGE['id']}"
    assert event.request_model == "claude-sonnet-4-5"
    assert event.response_model == "claude-sonnet-4-5-20250929"
    # The resource named the customer; metadata records who produced the span.
    assert event.customer_external_id == "acme"
    assert event.metadata["service.name"] == "chatbot"
    assert event.metadata["otel.scope.name"] == "com.anthropic.sdk.python"
    assert "spanledger.adjustments" not in event.metadata


def test_openllmetry_anthropic_current_semconv_cache_creation(openllmetry_anthropic_spans):
    [span] = openllmetry_anthropic_spans
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.anthropic"
    event = _only_event(openllmetry_anthropic_spans)
    assert (event.input_tokens, event.cache_read_input_tokens, event.cache_write_input_tokens) == (
        142,
        100,
        30,
    )
    assert event.output_tokens == 7
    assert event.customer_external_id is None


def test_the_sdk_and_openllmetry_recording_one_call_share_a_dedupe_key(
    anthropic_sdk_spans, openllmetry_anthropic_spans
):
    sdk_event = _only_event(anthropic_sdk_spans)
    openllmetry_event = _only_event(openllmetry_anthropic_spans)
    assert sdk_event.dedupe_key == openllmetry_event.dedupe_key
    assert sdk_event.span_id != openllmetry_event.span_id


def test_openllmetry_openai_reasoning_tokens_and_cache_read(openllmetry_openai_spans):
    [span] = openllmetry_openai_spans
    assert span.instrumentation_scope.name.startswith("opentelemetry.instrumentation.openai")
    event = _only_event(openllmetry_openai_spans)
    assert event.provider == "openai"
    assert (event.input_tokens, event.cache_read_input_tokens, event.cache_write_input_tokens) == (
        50,
        10,
        None,
    )
    assert (event.output_tokens, event.reasoning_tokens) == (20, 5)
    assert event.dedupe_key == f"response:openai:{OPENAI_COMPLETION['id']}"


@pytest.mark.parametrize("encode, decode", [(otlp_protobuf, decode_protobuf), (otlp_json, decode_json)])
def test_real_spans_map_the_same_after_an_otlp_round_trip(
    anthropic_sdk_spans, openllmetry_openai_spans, encode, decode
):
    spans = anthropic_sdk_spans + openllmetry_openai_spans
    settings = MappingSettings()
    span_keys, resource_keys = relevant_attribute_keys(settings)
    decoded = decode(encode(spans), ReceiverLimits(), span_keys, resource_keys)
    assert map_spans(decoded, settings).events == map_spans(records(spans), settings).events


# Spellings no installed package emits any more: produced with the SDK and the attribute names those
# packages used (OpenLLMetry before semconv-ai 0.5, GenAI conventions before 1.36).
OLDER_DIALECT_SPAN = {
    "gen_ai.system": "OpenAI",
    "llm.request.type": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.id": "chatcmpl-old",
    "gen_ai.usage.prompt_tokens": 40,
    "gen_ai.usage.completion_tokens": 9,
    "llm.usage.total_tokens": 49,
    "gen_ai.usage.cache_read_input_tokens": 8,
    "gen_ai.usage.cache_creation_input_tokens": 2,
    "llm.usage.reasoning_tokens": 3,
}


def test_older_conventions_and_old_openllmetry_spellings():
    event = _only_event(make_spans([OLDER_DIALECT_SPAN], scope="opentelemetry.instrumentation.openai"))
    assert event.provider == "openai"  # providers are compared lower-case
    assert event.operation == "chat"
    assert (event.input_tokens, event.output_tokens) == (40, 9)
    assert (event.cache_read_input_tokens, event.cache_write_input_tokens, event.reasoning_tokens) == (
        8,
        2,
        3,
    )
    assert event.dedupe_key == "response:openai:chatcmpl-old"


def test_current_conventions_win_over_older_spellings_on_one_span():
    span = {
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "azure.ai.openai",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.prompt_tokens": 1,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.completion_tokens": 1,
        "gen_ai.usage.reasoning.output_tokens": 4,
        "gen_ai.usage.reasoning_tokens": 1,
    }
    event = _only_event(make_spans([span]))
    assert (event.provider, event.input_tokens, event.output_tokens, event.reasoning_tokens) == (
        "openai",
        100,
        10,
        4,
    )


def test_total_tokens_fills_a_missing_output_count():
    event = _only_event(
        make_spans(
            [{"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": 30, "llm.usage.total_tokens": 45}]
        )
    )
    assert (event.input_tokens, event.output_tokens) == (30, 15)
    assert event.metadata["spanledger.adjustments"] == ["output_tokens_from_total"]


def test_total_alone_is_billable_but_not_split():
    event = _only_event(make_spans([{"gen_ai.provider.name": "openai", "gen_ai.usage.total_tokens": 45}]))
    assert (event.input_tokens, event.output_tokens) == (None, None)
    assert event.metadata["spanledger.adjustments"] == ["total_tokens_only"]


ANTHROPIC_RAW_COUNTS = {
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.request.model": "anthropic.claude-3-5-sonnet",
    "gen_ai.usage.input_tokens": 12,  # Bedrock Converse's inputTokens: the uncached part only
    "gen_ai.usage.cache_read.input_tokens": 5,
    "gen_ai.usage.cache_creation.input_tokens": 3,
    "gen_ai.usage.output_tokens": 7,
}


def test_known_scope_reporting_anthropic_raw_input_gets_the_cache_added():
    event = _only_event(make_spans([ANTHROPIC_RAW_COUNTS], scope="opentelemetry.instrumentation.bedrock"))
    assert (event.input_tokens, event.cache_read_input_tokens, event.cache_write_input_tokens) == (20, 5, 3)
    assert event.metadata["spanledger.adjustments"] == ["input_tokens_plus_cache"]


def test_unknown_scope_with_plausible_counts_is_taken_as_the_convention_says():
    event = _only_event(make_spans([ANTHROPIC_RAW_COUNTS], scope="some.other.instrumentation"))
    assert event.input_tokens == 12


def test_configured_scope_is_treated_as_reporting_raw_anthropic_input(monkeypatch):
    monkeypatch.setenv("SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES", "my.company.llm")
    settings = MappingSettings.from_environment()
    event = _only_event(make_spans([ANTHROPIC_RAW_COUNTS], scope="my.company.llm"), settings)
    assert event.input_tokens == 20


def test_cache_larger_than_input_proves_an_anthropic_raw_count_whatever_the_scope():
    span = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.cache_read.input_tokens": 2000,
        "gen_ai.usage.output_tokens": 50,
    }
    event = _only_event(make_spans([span], scope="agentops.instrumentation.anthropic"))
    assert event.input_tokens == 2004


def test_cache_larger_than_input_from_a_non_anthropic_provider_is_rejected():
    span = {
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.cache_read.input_tokens": 2000,
    }
    result = map_spans(records(make_spans([span])))
    assert result.events == ()
    assert "cache" in result.rejected[0].reason


def test_gemini_raw_output_gets_the_thinking_tokens_added():
    span = {
        "gen_ai.provider.name": "gcp.gen_ai",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.reasoning_tokens": 30,
    }
    event = _only_event(make_spans([span], scope="opentelemetry.instrumentation.google_generativeai"))
    assert (event.output_tokens, event.reasoning_tokens) == (50, 30)


def test_every_table_row_is_exercised_by_these_tests():
    exercised = set(OLDER_DIALECT_SPAN) | {
        "gen_ai.provider.name",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.usage.total_tokens",
    }
    assert {rule.attribute for rule in dialects.ATTRIBUTE_TABLE} <= exercised


def test_map_span_of_a_plain_http_span_is_none():
    [record] = records(make_spans([{"http.request.method": "GET"}]))
    assert map_span(record) is None
