"""The real ``openai`` and ``anthropic`` SDKs against a server that misbehaves: malformed JSON, a broken SSE
event, a stream that stops mid-way, an upstream too slow for the client's timeout, an error status with a
body that is not JSON.

Each call runs twice, without and with the instrumentation. The app must see exactly the same thing both
times (same result, or same exception type and message, same chunks before it), and the instrumented run
must leave one span that says what happened (``error.type`` and an error status for failures the transport
saw, ``spanledger.usage.missing`` when no usage could be read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from raw_llm_server import RawAnswer, RawLLMServer

from spanledger.instrumentation import SpanledgerInstrumentor

SCOPE = "spanledger.instrumentation"
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def server() -> Iterator[RawLLMServer]:
    running = RawLLMServer().start()
    yield running
    running.stop()


Outcome = tuple[str, str, list[Any]]


def _observe(call: Callable[[list[Any]], Any]) -> Outcome:
    """What the app sees: the result or the exception (type and message), and the chunks before it."""
    chunks: list[Any] = []
    try:
        result = call(chunks)
    except Exception as exc:
        return f"raised {type(exc).__module__}.{type(exc).__qualname__}", str(exc), chunks
    return "returned", _plain(result), chunks


def _plain(value: Any) -> str:
    if hasattr(value, "model_dump"):
        return json.dumps(value.model_dump(warnings=False), sort_keys=True, default=str)
    return repr(value)


def _with_and_without_instrumentation(call: Callable[[list[Any]], Any]) -> tuple[Outcome, Outcome, list]:
    plain = _observe(call)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SpanledgerInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        instrumented = _observe(call)
    finally:
        instrumentor.uninstrument()
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.instrumentation_scope is not None and s.instrumentation_scope.name == SCOPE
    ]
    return plain, instrumented, spans


def _same_for_the_app(plain: Outcome, instrumented: Outcome) -> None:
    assert instrumented[0] == plain[0]
    assert instrumented[1] == plain[1]
    assert [_plain(c) for c in instrumented[2]] == [_plain(c) for c in plain[2]]


# --- OpenAI ---------------------------------------------------------------------------------------------


def _openai(server: RawLLMServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, **options)


def _chat(server: RawLLMServer, **options: Any) -> Callable[[list[Any]], Any]:
    def call(chunks: list[Any]) -> Any:
        return _openai(server, **options).chat.completions.create(model="gpt-4o", messages=MESSAGES)

    return call


def _chat_stream(server: RawLLMServer) -> Callable[[list[Any]], Any]:
    def call(chunks: list[Any]) -> Any:
        stream = _openai(server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        for chunk in stream:
            chunks.append(chunk)
        return len(chunks)

    return call


def _sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [
        b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n" for e in events
    ]


def _chat_chunk(content: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "chatcmpl-bad", "object": "chat.completion", "choices": [',  # truncated
        b"definitely not json",
        b"[1, 2, 3]",
        b'{"id": "chatcmpl-odd", "usage": {"prompt_tokens": "many", "completion_tokens": -4}}',
    ],
)
def test_openai_malformed_json_body(server, body):
    server.answer = RawAnswer(pieces=[body])
    plain, instrumented, spans = _with_and_without_instrumentation(_chat(server))
    _same_for_the_app(plain, instrumented)
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    # The provider answered 200 but no usable usage could be read: billing must know it is unknown.
    assert attributes.get("spanledger.usage.missing") is True
    assert "gen_ai.usage.input_tokens" not in attributes and "gen_ai.usage.output_tokens" not in attributes


def test_openai_html_instead_of_json(server):
    server.answer = RawAnswer(
        content_type="text/html", pieces=[b"<html><body>502 from a proxy</body></html>"]
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_chat(server))
    _same_for_the_app(plain, instrumented)
    assert len(spans) == 1 and dict(spans[0].attributes or {}).get("spanledger.usage.missing") is True


def test_openai_error_status_with_a_body_that_is_not_json(server):
    server.answer = RawAnswer(status=502, content_type="text/plain", pieces=[b"{oops: bad gateway"])
    plain, instrumented, spans = _with_and_without_instrumentation(_chat(server))
    _same_for_the_app(plain, instrumented)
    assert plain[0] == "raised openai.InternalServerError"
    assert len(spans) == 1
    assert spans[0].attributes["error.type"] == "502"
    assert spans[0].status.status_code.name == "ERROR"


def test_openai_timeout_raised_by_the_sdk(server):
    server.answer = RawAnswer(pieces=[b"{}"], delay_seconds=5)
    plain, instrumented, spans = _with_and_without_instrumentation(_chat(server, timeout=0.3))
    _same_for_the_app(plain, instrumented)
    assert plain[0] == "raised openai.APITimeoutError"
    assert len(spans) == 1
    assert spans[0].attributes["error.type"] == "ReadTimeout"
    assert spans[0].status.status_code.name == "ERROR"


def test_openai_stream_with_a_malformed_event(server):
    server.answer = RawAnswer(
        content_type="text/event-stream",
        chunked=True,
        pieces=_sse(
            _chat_chunk("Hel"), '{"id": "chatcmpl-fault", "choices": [', _chat_chunk("lo", "stop"), "[DONE]"
        ),
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_chat_stream(server))
    _same_for_the_app(plain, instrumented)
    assert plain[2], "the app saw the chunks before the broken event"
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["gen_ai.response.id"] == "chatcmpl-fault"
    assert attributes.get("spanledger.usage.missing") is True


def test_openai_stream_that_breaks_mid_way(server):
    server.answer = RawAnswer(
        content_type="text/event-stream",
        chunked=True,
        cut=True,
        pieces=_sse(_chat_chunk("Hel"), _chat_chunk("lo")),
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_chat_stream(server))
    _same_for_the_app(plain, instrumented)
    assert plain[0].startswith("raised openai.") and len(plain[2]) == 2
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["error.type"] == "RemoteProtocolError"
    assert attributes.get("spanledger.usage.missing") is True
    assert spans[0].status.status_code.name == "ERROR"


def test_openai_stream_that_ends_without_done_or_usage(server):
    server.answer = RawAnswer(
        content_type="text/event-stream", chunked=True, pieces=_sse(_chat_chunk("Hi", "stop"))
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_chat_stream(server))
    _same_for_the_app(plain, instrumented)
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes.get("spanledger.usage.missing") is True and "error.type" not in attributes


# --- Anthropic ------------------------------------------------------------------------------------------


def _anthropic(server: RawLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


def _messages(server: RawLLMServer) -> Callable[[list[Any]], Any]:
    def call(chunks: list[Any]) -> Any:
        return _anthropic(server).messages.create(model="claude-fault-test", max_tokens=64, messages=MESSAGES)

    return call


def _messages_stream(server: RawLLMServer) -> Callable[[list[Any]], Any]:
    def call(chunks: list[Any]) -> Any:
        stream = _anthropic(server).messages.create(
            model="claude-fault-test", max_tokens=64, messages=MESSAGES, stream=True
        )
        for event in stream:
            chunks.append(event)
        return len(chunks)

    return call


def _anthropic_events(*events: tuple[str, dict[str, Any] | str]) -> list[bytes]:
    return [
        f"event: {name}\ndata: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
        for name, data in events
    ]


_MESSAGE_START = (
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_fault",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "output_tokens": 1},
        },
    },
)
_BLOCK_START = (
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
_DELTA = (
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
)


@pytest.mark.parametrize(
    "body", [b'{"id": "msg_bad", "type": "message", "content": [', b"<html>no</html>", b"null"]
)
def test_anthropic_malformed_json_body(server, body):
    server.answer = RawAnswer(pieces=[body])
    plain, instrumented, spans = _with_and_without_instrumentation(_messages(server))
    _same_for_the_app(plain, instrumented)
    assert len(spans) == 1 and dict(spans[0].attributes or {}).get("spanledger.usage.missing") is True


def test_anthropic_overloaded_with_a_body_that_is_not_json(server):
    server.answer = RawAnswer(status=529, content_type="text/plain", pieces=[b"overloaded!"])
    plain, instrumented, spans = _with_and_without_instrumentation(_messages(server))
    _same_for_the_app(plain, instrumented)
    assert plain[0].startswith("raised anthropic.")
    assert len(spans) == 1 and spans[0].attributes["error.type"] == "529"


def test_anthropic_stream_with_a_malformed_event(server):
    server.answer = RawAnswer(
        content_type="text/event-stream",
        chunked=True,
        pieces=_anthropic_events(_MESSAGE_START, _BLOCK_START, ("content_block_delta", "{broken"), _DELTA),
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_messages_stream(server))
    _same_for_the_app(plain, instrumented)
    assert len(plain[2]) >= 2
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["gen_ai.response.id"] == "msg_fault"


def test_anthropic_stream_that_breaks_mid_way(server):
    server.answer = RawAnswer(
        content_type="text/event-stream",
        chunked=True,
        cut=True,
        pieces=_anthropic_events(_MESSAGE_START, _BLOCK_START, _DELTA),
    )
    plain, instrumented, spans = _with_and_without_instrumentation(_messages_stream(server))
    _same_for_the_app(plain, instrumented)
    assert plain[0] == "raised httpx2.RemoteProtocolError" and len(plain[2]) == 3  # the SDK lets it through
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["error.type"] == "RemoteProtocolError"
    assert attributes["gen_ai.response.id"] == "msg_fault"
    # What the stream said before it broke is kept: the input count from message_start.
    assert attributes["gen_ai.usage.input_tokens"] == 25
