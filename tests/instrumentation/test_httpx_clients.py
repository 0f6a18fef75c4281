"""Hand-written clients on httpx (the pre-httpx2 library) and httpx2; what passes through untouched."""

from __future__ import annotations

import asyncio

import httpx
import httpx2
import pytest
import wire_samples as samples

from spanledger.instrumentation import body_recorder

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("library", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_sync_json_and_stream(llm_server, spans, library):
    with library.Client() as http:
        reply = http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
        with http.stream("POST", f"{llm_server.url}/v1/chat/completions", json={**BODY, "stream": True}) as r:
            streamed = b"".join(r.iter_bytes())
    assert reply.json()["usage"]["prompt_tokens"] == 1200
    assert streamed == b"".join(samples.openai_chat_sse("gpt-4o", include_usage=False))
    found = spans.genai()
    assert len(found) == 2
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in found] == [1200, 1200]


@pytest.mark.parametrize("library", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_async_json_and_stream(llm_server, spans, library):
    async def main():
        async with library.AsyncClient() as http:
            await http.post(f"{llm_server.url}/v1/messages", json={**BODY, "max_tokens": 5})
            async with http.stream(
                "POST", f"{llm_server.url}/v1/messages", json={**BODY, "max_tokens": 5, "stream": True}
            ) as r:
                return b"".join([chunk async for chunk in r.aiter_bytes()])

    assert asyncio.run(main()) == b"".join(samples.anthropic_sse("gpt-4o"))
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in spans.genai()] == [5050, 5050]


def test_requests_that_are_not_llm_calls_make_no_span(llm_server, spans):
    with httpx2.Client() as http:
        http.post(f"{llm_server.url}/v1/threads/t1/messages", json={"role": "user", "content": "x"})
        http.post(f"{llm_server.url}/v1/chat/completions", content=b"not json")
        http.post(f"{llm_server.url}/v1/chat/completions", json={"model": "gpt-4o"})  # no messages
    assert spans.genai() == []


def test_the_same_exception_object_reaches_the_caller(spans):
    raised = httpx2.ConnectError("refused")

    def handler(request):
        raise raised

    with (
        httpx2.Client(transport=httpx2.MockTransport(handler)) as http,
        pytest.raises(httpx2.ConnectError) as caught,
    ):
        http.post("https://api.openai.com/v1/chat/completions", json=BODY)
    assert caught.value is raised
    attributes = spans.attributes()
    assert attributes["error.type"] == "ConnectError"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["server.port"] == 443


def test_its_own_failures_are_logged_once_and_swallowed(llm_server, spans, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("reader bug")

    monkeypatch.setattr(body_recorder, "facts_from_complete_body", broken)
    monkeypatch.setattr("spanledger.instrumentation.transport.facts_from_complete_body", broken)
    with httpx2.Client() as http:
        first = http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
        second = http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
    assert first.json() == second.json() == samples.openai_chat_json("gpt-4o")
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "reading the response" in r.message]
    assert len(warnings) <= 1
    assert len(spans.genai()) == 2


def test_provider_from_configured_host_and_default(llm_server, instrument):
    spans = instrument(provider_hosts={f"127.0.0.1:{llm_server.port}": "vllm"})
    with httpx2.Client() as http:
        http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
    assert spans.attributes()["gen_ai.provider.name"] == "vllm"


def test_known_hosts_name_their_provider():
    from spanledger.instrumentation.config import InstrumentationConfig
    from spanledger.instrumentation.recognition import provider_for_host

    config = InstrumentationConfig.resolve(environ={})
    assert provider_for_host("openrouter.ai", 443, "openai", config) == "openrouter"
    assert provider_for_host("my-res.openai.azure.com", 443, "openai", config) == "azure.ai.openai"
    assert (
        provider_for_host("europe-west4-aiplatform.googleapis.com", 443, "gemini", config) == "gcp.vertex_ai"
    )
    assert provider_for_host("llm.internal", 8000, "openai", config) == "openai"
    other = InstrumentationConfig.resolve(environ={"SPANLEDGER_DEFAULT_PROVIDER": "self_hosted"})
    assert provider_for_host("llm.internal", 8000, "openai", other) == "self_hosted"
