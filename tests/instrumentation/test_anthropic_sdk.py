"""The real ``anthropic`` SDK (over httpx2) against the fake server."""

from __future__ import annotations

import asyncio

import anthropic
import httpx2
import pytest

MESSAGES = [{"role": "user", "content": "Say hello"}]

# Anthropic's input_tokens (50) excludes cache reads (3000) and writes (2000): the span's input is 5050.
EXPECTED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-6",
    "gen_ai.response.model": "claude-sonnet-4-6",
    "gen_ai.response.id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "gen_ai.response.finish_reasons": ("end_turn",),
    "gen_ai.usage.input_tokens": 5050,
    "gen_ai.usage.cache_read.input_tokens": 3000,
    "gen_ai.usage.cache_creation.input_tokens": 2000,
    "gen_ai.usage.output_tokens": 420,
}


def client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


def async_client(server) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


def assert_span(spans, stream: bool) -> None:
    span = spans.one()
    assert span.name == "chat claude-sonnet-4-6"
    attributes = dict(span.attributes)
    for key, value in EXPECTED.items():
        assert attributes[key] == value, key
    assert attributes.get("spanledger.stream", False) is stream
    assert "gen_ai.usage.reasoning.output_tokens" not in attributes


def test_messages_sync_json(llm_server, spans):
    message = client(llm_server).messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES)
    assert message.content[0].text == "Hello!"
    assert_span(spans, stream=False)


def test_messages_async_json(llm_server, spans):
    async def main():
        return await async_client(llm_server).messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
        )

    assert asyncio.run(main()).usage.output_tokens == 420
    assert_span(spans, stream=False)


def test_messages_sync_stream_takes_the_last_cumulative_delta(llm_server, spans):
    """Deltas report 210 then 420 output tokens: the span has 420, not 1 + 210 + 420."""
    events = list(
        client(llm_server).messages.create(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES, stream=True
        )
    )
    assert events[-1].type == "message_stop"
    assert_span(spans, stream=True)
    assert "stream_options" not in llm_server.requests[0].json()


def test_messages_async_stream_helper(llm_server, spans):
    async def main():
        async with async_client(llm_server).messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
        ) as stream:
            return await stream.get_final_text()

    assert asyncio.run(main()) == "Hello!"
    assert_span(spans, stream=True)


def test_message_delta_without_cache_fields_keeps_message_start_counts(llm_server, spans):
    usage = {"input_tokens": 10, "output_tokens": 7}
    llm_server.usages.anthropic = {**usage, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    list(
        client(llm_server).messages.create(
            model="claude-haiku-4-5", max_tokens=9, messages=MESSAGES, stream=True
        )
    )
    attributes = spans.attributes()
    assert attributes["gen_ai.usage.input_tokens"] == 10
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 0


def test_overloaded_error(llm_server, spans):
    llm_server.faults.status = 529
    llm_server.faults.error_body = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(llm_server).messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES)
    assert caught.value.status_code == 529
    assert spans.attributes()["error.type"] == "529"


def test_stream_cut_in_the_middle_keeps_what_the_stream_said(llm_server, spans):
    llm_server.faults.cut_after_events = 3
    # The SDK lets the transport error through on a broken stream; so must the instrumentation.
    with pytest.raises(httpx2.RemoteProtocolError):
        list(
            client(llm_server).messages.create(
                model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES, stream=True
            )
        )
    attributes = spans.attributes()
    assert attributes["error.type"] == "RemoteProtocolError"
    # message_start arrived: its counts are what the provider had reported when the stream broke.
    assert attributes["gen_ai.usage.input_tokens"] == 5050
    assert attributes["gen_ai.usage.output_tokens"] == 1
