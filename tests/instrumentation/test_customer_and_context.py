"""Customer attribution from baggage, and nesting under opentelemetry-instrumentation-httpx."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest
from opentelemetry import baggage, context
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

from spanledger.instrumentation import customer

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def call(server):
    with httpx2.Client() as http:
        http.post(f"{server.url}/v1/chat/completions", json=BODY)


def test_customer_context_manager(llm_server, spans):
    with customer("acme"):
        call(llm_server)
    call(llm_server)
    first, second = spans.genai()
    assert first.attributes["customer.id"] == "acme"
    assert "customer.id" not in second.attributes
    assert baggage.get_baggage("customer.id") is None


def test_customer_decorator_sync_and_async(llm_server, spans):
    @customer("globex")
    def sync_work():
        call(llm_server)

    @customer("initech")
    async def async_work():
        async with httpx2.AsyncClient() as http:
            await http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)

    sync_work()
    asyncio.run(async_work())
    assert [s.attributes["customer.id"] for s in spans.genai()] == ["globex", "initech"]


def test_customer_async_context_manager(llm_server, spans):
    async def main():
        async with customer("umbrella"), httpx2.AsyncClient() as http:
            await http.post(f"{llm_server.url}/v1/chat/completions", json=BODY)

    asyncio.run(main())
    assert spans.attributes()["customer.id"] == "umbrella"


def test_baggage_set_by_other_code_is_read_too(llm_server, spans):
    token = context.attach(baggage.set_baggage("customer.id", "from-upstream"))
    try:
        call(llm_server)
    finally:
        context.detach(token)
    assert spans.attributes()["customer.id"] == "from-upstream"


def test_allow_listed_baggage_attributes_only(llm_server, instrument):
    spans = instrument(baggage_attributes=["customer.plan", "feature"])
    with customer("acme", {"customer.plan": "pro", "feature": "summarise", "secret": "x"}):
        call(llm_server)
    attributes = spans.attributes()
    assert attributes["customer.plan"] == "pro"
    assert attributes["feature"] == "summarise"
    assert "secret" not in attributes


def test_customer_baggage_key_is_configurable(llm_server, instrument, monkeypatch):
    spans = instrument(customer_baggage_key="tenant")
    with customer("acme"):
        assert baggage.get_baggage("tenant") == "acme"
        call(llm_server)
    assert spans.attributes()["customer.id"] == "acme"


def test_customer_rejects_an_empty_id():
    with pytest.raises(ValueError, match="non-empty customer id"):
        customer(" ")


def test_http_span_from_opentelemetry_instrumentation_httpx_nests_under_the_genai_span(
    llm_server, instrument, tracer_provider
):
    spans = instrument()
    http_instrumentor = HTTPX2ClientInstrumentor()
    http_instrumentor.instrument(tracer_provider=tracer_provider[0])
    try:
        client = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="k", max_retries=0)
        client.chat.completions.create(**BODY)
        list(client.chat.completions.create(**BODY, stream=True))
    finally:
        http_instrumentor.uninstrument()
    genai = spans.genai()
    assert len(genai) == 2
    http_spans = [s for s in spans.all() if s not in genai]
    assert len(http_spans) == 2
    for parent, child in zip(genai, http_spans, strict=True):
        assert child.parent is not None and child.parent.span_id == parent.context.span_id
        assert child.context.trace_id == parent.context.trace_id
