"""The per-client form: ``instrument_client`` / ``uninstrument_client`` on one httpx or httpx2 client."""

from __future__ import annotations

import asyncio
import logging

import httpx
import httpx2
import openai
import pytest
from conftest import Recorded

from spanledger.instrumentation import SpanledgerInstrumentor

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def recorded(tracer_provider) -> Recorded:
    provider, exporter = tracer_provider
    return Recorded(exporter, provider)


@pytest.mark.parametrize("library", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_only_the_instrumented_client_records(llm_server, recorded, library):
    with library.Client() as instrumented, library.Client() as other:
        SpanledgerInstrumentor.instrument_client(instrumented, tracer_provider=recorded.provider)
        instrumented.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
        other.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
        with instrumented.stream(
            "POST", f"{llm_server.url}/v1/chat/completions", json={**BODY, "stream": True}
        ) as response:
            response.read()
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in recorded.genai()] == [1200, 1200]
    assert [s.attributes.get("spanledger.stream", False) for s in recorded.genai()] == [False, True]


@pytest.mark.parametrize("library", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_async_client(llm_server, recorded, library):
    async def main():
        async with library.AsyncClient() as http:
            SpanledgerInstrumentor.instrument_client(http, tracer_provider=recorded.provider)
            await http.post(f"{llm_server.url}/v1/messages", json={**BODY, "max_tokens": 5})

    asyncio.run(main())
    assert recorded.one().attributes["gen_ai.provider.name"] == "anthropic"


def test_openai_sdk_with_an_instrumented_http_client(llm_server, recorded):
    http = httpx2.Client()
    SpanledgerInstrumentor.instrument_client(http, tracer_provider=recorded.provider)
    sdk = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="sk-test", max_retries=0, http_client=http)
    chunks = list(sdk.chat.completions.create(model="gpt-4o", messages=BODY["messages"], stream=True))
    assert all(chunk.choices for chunk in chunks)  # the usage-only chunk stays hidden
    attributes = dict(recorded.one().attributes)
    assert attributes["gen_ai.usage.output_tokens"] == 300 and attributes["gen_ai.response.id"]
    http.close()


def test_uninstrument_client_restores_the_class_method(llm_server, recorded):
    with httpx2.Client() as http:
        SpanledgerInstrumentor.instrument_client(http, tracer_provider=recorded.provider)
        assert "send" in vars(http)
        SpanledgerInstrumentor.uninstrument_client(http)
        assert "send" not in vars(http)
        SpanledgerInstrumentor.uninstrument_client(http)  # twice: nothing happens
        http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
    assert recorded.genai() == []


def test_global_and_per_client_record_each_call_once(llm_server, recorded, instrument):
    globally = instrument()
    with httpx2.Client() as http:
        SpanledgerInstrumentor.instrument_client(
            http, tracer_provider=recorded.provider, provider_hosts={"127.0.0.1": "vllm"}
        )
        http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
    span = globally.one()  # the same exporter: one span, not two
    assert span.attributes["gen_ai.provider.name"] == "vllm"  # the outer (per-client) wrapper recorded it


def test_instrumenting_a_client_twice_warns_and_records_once(llm_server, recorded, caplog):
    with httpx2.Client() as http:
        SpanledgerInstrumentor.instrument_client(http, tracer_provider=recorded.provider)
        with caplog.at_level(logging.WARNING, logger="spanledger.instrumentation"):
            SpanledgerInstrumentor.instrument_client(http, tracer_provider=recorded.provider)
        http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)
    assert "instrumented already" in caplog.text
    recorded.one()


def test_per_client_options_apply_to_that_client_only(llm_server, recorded):
    with httpx2.Client() as http:
        SpanledgerInstrumentor.instrument_client(
            http, tracer_provider=recorded.provider, openai_stream_usage=False
        )
        with http.stream(
            "POST", f"{llm_server.url}/v1/chat/completions", json={**BODY, "stream": True}
        ) as response:
            response.read()
    assert "stream_options" not in llm_server.requests[-1].json()
    assert recorded.one().attributes["spanledger.usage.missing"] is True


@pytest.mark.parametrize("not_a_client", [object(), httpx2.MockTransport(lambda request: None), "client"])
def test_anything_but_an_httpx_client_is_refused(not_a_client):
    with pytest.raises(ValueError, match="httpx or httpx2 Client or AsyncClient"):
        SpanledgerInstrumentor.instrument_client(not_a_client)


def test_bad_options_are_refused_before_anything_is_patched():
    with httpx2.Client() as http:
        with pytest.raises(ValueError, match="baggage_attributes"):
            SpanledgerInstrumentor.instrument_client(http, baggage_attributes="customer.plan")
        assert "send" not in vars(http)
