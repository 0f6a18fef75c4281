"""The legacy ``/v1/completions`` endpoint (``text_completion``), through the real ``openai`` SDK."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
import wire_samples as samples

MODEL = "gpt-3.5-turbo-instruct"

EXPECTED = {
    "gen_ai.operation.name": "text_completion",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": MODEL,
    "gen_ai.response.model": MODEL,
    "gen_ai.usage.input_tokens": 40,
    "gen_ai.usage.output_tokens": 16,
}


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-test", max_retries=0)


def assert_span(spans, *, response_id: str, finish: str) -> dict:
    span = spans.one()
    assert span.name == f"text_completion {MODEL}"
    attributes = dict(span.attributes)
    for key, value in EXPECTED.items():
        assert attributes[key] == value, key
    assert attributes["gen_ai.response.id"] == response_id
    assert attributes["gen_ai.response.finish_reasons"] == (finish,)
    assert "spanledger.usage.missing" not in attributes
    return attributes


def test_completion_json(llm_server, spans):
    result = client(llm_server).completions.create(model=MODEL, prompt="Say hello", max_tokens=16)
    assert result.choices[0].text == "Hello there"
    attributes = assert_span(spans, response_id="cmpl-legacy1", finish="length")
    assert "spanledger.stream" not in attributes


def test_completion_stream_gets_usage_and_the_app_sees_the_stream_it_asked_for(llm_server, spans):
    stream = client(llm_server).completions.create(model=MODEL, prompt="Say hello", stream=True)
    chunks = list(stream)
    assert [c.choices[0].text for c in chunks] == ["Hel", "lo", ""]  # no usage-only chunk
    assert all(c.usage is None for c in chunks)
    assert llm_server.requests[-1].json()["stream_options"] == {"include_usage": True}
    attributes = assert_span(spans, response_id="cmpl-stream1", finish="stop")
    assert attributes["spanledger.stream"] is True


def test_completion_stream_bytes_unchanged_for_a_hand_written_async_client(llm_server, spans):
    async def main() -> bytes:
        async with (
            httpx2.AsyncClient() as http,
            http.stream(
                "POST",
                f"{llm_server.url}/v1/completions",
                json={"model": MODEL, "prompt": "x", "stream": True},
            ) as response,
        ):
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    assert asyncio.run(main()) == b"".join(samples.openai_completions_sse(MODEL, include_usage=False))
    assert_span(spans, response_id="cmpl-stream1", finish="stop")


def test_an_app_that_asks_for_usage_itself_still_gets_the_usage_chunk(llm_server, spans):
    stream = client(llm_server).completions.create(
        model=MODEL, prompt="Say hello", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert_span(spans, response_id="cmpl-stream1", finish="stop")


def test_completion_stream_without_usage_when_rewrites_are_off(llm_server, instrument):
    spans = instrument(openai_stream_usage=False)
    list(client(llm_server).completions.create(model=MODEL, prompt="Say hello", stream=True))
    assert "stream_options" not in llm_server.requests[-1].json()
    attributes = dict(spans.one().attributes)
    assert attributes["spanledger.usage.missing"] is True
    assert "gen_ai.usage.input_tokens" not in attributes


def test_a_completions_body_without_a_prompt_is_not_an_llm_call(llm_server, spans):
    with httpx2.Client() as http:
        http.post(f"{llm_server.url}/v1/completions", json={"model": MODEL})
        http.post(f"{llm_server.url}/v1/completions", content=b"not json")
    assert spans.genai() == []


def test_chat_completions_are_still_chat(llm_server, spans):
    client(llm_server).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert spans.one().attributes["gen_ai.operation.name"] == "chat"


def test_a_failed_completion_records_the_status(llm_server, spans):
    llm_server.faults.status = 429
    with pytest.raises(openai.RateLimitError):
        client(llm_server).completions.create(model=MODEL, prompt="Say hello")
    attributes = dict(spans.one().attributes)
    assert attributes["error.type"] == "429" and attributes["gen_ai.operation.name"] == "text_completion"
