"""The real ``openai`` SDK (over httpx2) against the fake server: chat, Responses, embeddings."""

from __future__ import annotations

import asyncio
import gc

import httpx2
import openai
import pytest
import wire_samples as samples

from spanledger.instrumentation import SpanledgerInstrumentor

MESSAGES = [{"role": "user", "content": "Say hello"}]

CHAT_EXPECTED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.reasoning.output_tokens": 128,
    "server.address": "127.0.0.1",
}


def client(server, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, **kwargs)


def async_client(server, **kwargs) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0, **kwargs)


def assert_chat_span(spans, server, *, response_id: str, stream: bool) -> None:
    span = spans.one()
    assert span.name == "chat gpt-4o"
    assert span.kind.name == "CLIENT"
    attributes = dict(span.attributes)
    for key, value in CHAT_EXPECTED.items():
        assert attributes[key] == value, key
    assert attributes["server.port"] == server.port
    assert attributes["gen_ai.response.id"] == response_id
    assert attributes.get("spanledger.stream", False) is stream
    assert "gen_ai.usage.cache_creation.input_tokens" not in attributes
    assert "spanledger.usage.missing" not in attributes


def test_chat_sync_json(llm_server, spans):
    result = client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content == "Hello there"
    assert_chat_span(spans, llm_server, response_id="chatcmpl-abc123", stream=False)


def test_chat_async_json(llm_server, spans):
    async def main():
        return await async_client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert asyncio.run(main()).usage.prompt_tokens == 1200
    assert_chat_span(spans, llm_server, response_id="chatcmpl-abc123", stream=False)


def test_chat_sync_stream_gets_usage_without_the_app_seeing_the_extra_chunk(llm_server, spans):
    chunks = list(client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["", "Hel", "lo", None]
    assert all(c.usage is None for c in chunks)
    assert llm_server.requests[0].json()["stream_options"] == {"include_usage": True}
    assert_chat_span(spans, llm_server, response_id="chatcmpl-stream1", stream=True)


def test_chat_async_stream(llm_server, spans):
    async def main():
        stream = await async_client(llm_server).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert len(chunks) == 4 and all(c.choices for c in chunks)
    assert_chat_span(spans, llm_server, response_id="chatcmpl-stream1", stream=True)


def test_chat_stream_bytes_are_exactly_those_of_an_uninstrumented_stream(llm_server, spans):
    """Raw SSE the app reads equals what the server sends when usage was never asked for."""
    with (
        httpx2.Client() as http,
        http.stream(
            "POST",
            f"{llm_server.url}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": MESSAGES, "stream": True},
        ) as response,
    ):
        seen = b"".join(response.iter_bytes())
    assert seen == b"".join(samples.openai_chat_sse("gpt-4o", include_usage=False))
    assert spans.attributes()["gen_ai.usage.input_tokens"] == 1200


def test_app_that_asks_for_stream_usage_keeps_its_usage_chunk(llm_server, spans):
    chunks = list(
        client(llm_server).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1200
    assert spans.attributes()["gen_ai.usage.output_tokens"] == 300


def test_stream_usage_injection_can_be_turned_off_and_the_span_says_usage_is_missing(llm_server, instrument):
    spans = instrument(openai_stream_usage=False)
    chunks = list(client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert len(chunks) == 4
    assert "stream_options" not in llm_server.requests[0].json()
    attributes = spans.attributes()
    assert attributes["spanledger.usage.missing"] is True
    assert "gen_ai.usage.input_tokens" not in attributes
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_response_without_usage_is_flagged_not_invented(llm_server, spans):
    llm_server.usages.openai_chat = None
    with httpx2.Client() as http:
        http.post(f"{llm_server.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES})
    attributes = spans.attributes()
    assert attributes["spanledger.usage.missing"] is True
    assert not any(key.startswith("gen_ai.usage.") for key in attributes)


def test_responses_api_sync_json(llm_server, spans):
    result = client(llm_server).responses.create(model="gpt-4.1", input="hi")
    assert result.output_text == "Hi"
    span = spans.one()
    assert span.name == "chat gpt-4.1"
    attributes = dict(span.attributes)
    assert attributes["gen_ai.response.id"] == "resp_0123"
    assert attributes["gen_ai.response.model"] == "gpt-4.1-2025-04-14"
    assert attributes["gen_ai.usage.input_tokens"] == 900
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 512
    assert attributes["gen_ai.usage.output_tokens"] == 250
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 200
    assert attributes["gen_ai.response.finish_reasons"] == ("completed",)


def test_responses_api_async_stream(llm_server, spans):
    async def main():
        stream = await async_client(llm_server).responses.create(model="gpt-4.1", input="hi", stream=True)
        return [event.type async for event in stream]

    assert asyncio.run(main())[-1] == "response.completed"
    attributes = spans.attributes()
    assert attributes["gen_ai.usage.input_tokens"] == 900
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 200
    assert attributes["spanledger.stream"] is True
    assert "stream_options" not in llm_server.requests[0].json()


def test_responses_api_sync_stream(llm_server, spans):
    events = list(client(llm_server).responses.create(model="gpt-4.1", input="hi", stream=True))
    assert len(events) == 4
    assert spans.attributes()["gen_ai.usage.output_tokens"] == 250


def test_embeddings_sync_and_async(llm_server, spans):
    result = client(llm_server).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2

    async def main():
        await async_client(llm_server).embeddings.create(model="text-embedding-3-small", input="a")

    asyncio.run(main())
    found = spans.genai()
    assert [s.name for s in found] == ["embeddings text-embedding-3-small"] * 2
    for span in found:
        assert span.attributes["gen_ai.operation.name"] == "embeddings"
        assert span.attributes["gen_ai.usage.input_tokens"] == 16
        assert span.attributes["gen_ai.response.model"] == "text-embedding-3-small"
        assert "gen_ai.usage.output_tokens" not in span.attributes


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_http_errors_reach_the_app_as_the_sdks_own_exception(llm_server, spans, status):
    llm_server.faults.status = status
    with pytest.raises(openai.APIStatusError) as caught:
        client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.status_code == status
    span = spans.one()
    assert span.attributes["error.type"] == str(status)
    assert span.status.status_code.name == "ERROR"
    assert "spanledger.usage.missing" not in span.attributes


def test_connection_error_is_recorded_and_the_app_gets_the_sdk_exception(spans):
    dead = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        dead.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert spans.attributes()["error.type"] == "ConnectError"


def test_stream_cut_in_the_middle(llm_server, spans):
    llm_server.faults.cut_after_events = 2
    stream = client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    attributes = spans.attributes()
    assert attributes["error.type"] == "RemoteProtocolError"
    assert attributes["spanledger.usage.missing"] is True
    assert attributes["gen_ai.response.id"] == "chatcmpl-stream1"


def test_stream_closed_early_ends_the_span(llm_server, spans):
    stream = client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    assert spans.genai() == []
    stream.close()
    attributes = spans.attributes()
    assert attributes["spanledger.usage.missing"] is True
    assert "error.type" not in attributes


def test_abandoned_stream_ends_the_span_when_garbage_collected(llm_server, spans):
    def start_and_forget():
        stream = client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        next(iter(stream))

    start_and_forget()
    gc.collect()
    assert len(spans.genai()) == 1


def test_gzip_json_response(llm_server, spans):
    llm_server.faults.gzip = True
    result = client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.usage.completion_tokens == 300
    assert spans.attributes()["gen_ai.usage.output_tokens"] == 300


def test_gzip_stream_read_by_a_hand_written_client(llm_server, spans):
    llm_server.faults.gzip = True
    with (
        httpx2.Client() as http,
        http.stream(
            "POST",
            f"{llm_server.url}/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ) as response,
    ):
        body = b"".join(response.iter_bytes())
    assert body == b"".join(samples.openai_chat_sse("gpt-4o", include_usage=True))
    assert spans.attributes()["gen_ai.usage.input_tokens"] == 1200


def test_uninstrument_restores_the_client(llm_server, spans):
    SpanledgerInstrumentor().uninstrument()
    client(llm_server).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert spans.genai() == []
    assert "stream_options" not in llm_server.requests[0].json()
    assert not hasattr(httpx2.Client.send, "__wrapped__")
