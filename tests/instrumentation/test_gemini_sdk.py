"""The real ``google-genai`` SDK (over httpx2) against the fake server, plus Gemini's streamed JSON array."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
import wire_samples as samples
from google import genai
from google.genai import errors, types

# promptTokenCount (800) already includes the 600 cached; output = 150 candidates + 90 thoughts.
EXPECTED = {
    "gen_ai.operation.name": "generate_content",
    "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "gen_ai.response.model": "gemini-2.5-flash",
    "gen_ai.response.id": "gem-resp-1",
    "gen_ai.response.finish_reasons": ("STOP",),
    "gen_ai.usage.input_tokens": 800,
    "gen_ai.usage.cache_read.input_tokens": 600,
    "gen_ai.usage.output_tokens": 240,
    "gen_ai.usage.reasoning.output_tokens": 90,
}


def client(server) -> genai.Client:
    return genai.Client(
        api_key="gm-test",
        http_options=types.HttpOptions(base_url=server.url, retry_options=types.HttpRetryOptions(attempts=1)),
    )


def assert_span(spans, stream: bool) -> None:
    span = spans.one()
    assert span.name == "generate_content gemini-2.5-flash"
    attributes = dict(span.attributes)
    for key, value in EXPECTED.items():
        assert attributes[key] == value, key
    assert attributes.get("spanledger.stream", False) is stream


def test_generate_content_sync(llm_server, spans):
    gemini = client(llm_server)  # keep a reference: a collected genai.Client closes its HTTP client
    result = gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert result.text == "Hello"
    assert_span(spans, stream=False)


def test_generate_content_async(llm_server, spans):
    gemini = client(llm_server)

    async def main():
        return await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert asyncio.run(main()).usage_metadata.thoughts_token_count == 90
    assert_span(spans, stream=False)


def test_stream_generate_content_sync(llm_server, spans):
    gemini = client(llm_server)
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == "Hello!"
    assert "alt=sse" in llm_server.requests[0].path
    assert_span(spans, stream=True)


def test_stream_generate_content_async(llm_server, spans):
    gemini = client(llm_server)

    async def main():
        stream = await gemini.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        return [chunk async for chunk in stream]

    assert len(asyncio.run(main())) == 3
    assert_span(spans, stream=True)


def test_streamed_json_array_without_alt_sse(llm_server, spans):
    url = f"{llm_server.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    with httpx2.Client() as http, http.stream("POST", url, json={"contents": []}) as response:
        body = b"".join(response.iter_bytes())
    assert body == b"".join(samples.gemini_json_array("gemini-2.5-flash"))
    assert_span(spans, stream=True)


def test_gemini_error(llm_server, spans):
    llm_server.faults.status = 400
    llm_server.faults.error_body = {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}
    gemini = client(llm_server)
    with pytest.raises(errors.ClientError):
        gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert spans.attributes()["error.type"] == "400"
