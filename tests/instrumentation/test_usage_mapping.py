"""Every row of the usage-mapping table in docs/instrumentation.md, and the incremental stream readers."""

from __future__ import annotations

import json

import pytest
import wire_samples as samples

from spanledger.instrumentation.facts import Usage
from spanledger.instrumentation.json_array_stream import JSONArrayReader
from spanledger.instrumentation.sse import SSEReader
from spanledger.instrumentation.wire_anthropic import MessagesReader, usage_from_anthropic
from spanledger.instrumentation.wire_gemini import GenerateContentReader, usage_from_gemini
from spanledger.instrumentation.wire_openai import (
    add_include_usage,
    remove_null_usage,
    usage_from_chat,
    usage_from_responses,
)

ROWS = [
    pytest.param(
        usage_from_chat,
        {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 128},
        },
        Usage(1200, 300, 1024, 100, 128),
        id="openai-chat",
    ),
    pytest.param(
        usage_from_responses,
        {
            "input_tokens": 900,
            "input_tokens_details": {"cached_tokens": 512},
            "output_tokens": 250,
            "output_tokens_details": {"reasoning_tokens": 200},
        },
        Usage(900, 250, 512, None, 200),
        id="openai-responses",
    ),
    pytest.param(
        usage_from_chat, {"prompt_tokens": 16, "total_tokens": 16}, Usage(16, None), id="openai-embeddings"
    ),
    pytest.param(
        usage_from_anthropic,
        {
            "input_tokens": 50,
            "cache_creation_input_tokens": 2000,
            "cache_read_input_tokens": 3000,
            "output_tokens": 420,
        },
        Usage(5050, 420, 3000, 2000, None),
        id="anthropic",
    ),
    pytest.param(
        usage_from_gemini,
        {
            "promptTokenCount": 800,
            "cachedContentTokenCount": 600,
            "toolUsePromptTokenCount": 40,
            "candidatesTokenCount": 150,
            "thoughtsTokenCount": 90,
        },
        Usage(840, 240, 600, None, 90),
        id="gemini",
    ),
]


@pytest.mark.parametrize(("mapping", "raw", "expected"), ROWS)
def test_usage_mapping_table_row(mapping, raw, expected):
    assert mapping(raw) == expected


@pytest.mark.parametrize(
    "mapping", [usage_from_chat, usage_from_responses, usage_from_anthropic, usage_from_gemini]
)
def test_absent_or_malformed_usage_is_unknown_not_zero(mapping):
    assert mapping(None) is None
    assert mapping({}) is None
    assert mapping({"prompt_tokens": "12", "input_tokens": -1, "promptTokenCount": True}) is None


def test_anthropic_stream_takes_the_last_cumulative_value():
    reader = MessagesReader()
    for event in samples.anthropic_sse("claude"):
        parsed = SSEReader().feed(event)[0]
        reader.read_event(parsed.event, parsed.data)
    usage = reader.facts().usage
    assert usage == Usage(5050, 420, 3000, 2000, None)


def test_gemini_stream_takes_the_last_usage_metadata():
    reader = GenerateContentReader()
    for chunk in samples.gemini_stream_chunks("gemini-2.5-pro"):
        reader.read_event(None, json.dumps(chunk).encode())
    facts = reader.facts()
    assert facts.usage == Usage(800, 240, 600, None, 90)
    assert facts.finish_reasons == ["STOP"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_sse_reader_gives_the_same_events_whatever_the_chunking(size):
    body = b"".join(samples.anthropic_sse("claude")).replace(b"\n", b"\r\n")
    reader = SSEReader()
    events = []
    for start in range(0, len(body), size):
        events.extend(reader.feed(body[start : start + size]))
    assert reader.flush() == ([], b"")
    assert b"".join(e.raw for e in events) == body
    assert [e.event for e in events][:2] == ["message_start", "content_block_start"]
    assert json.loads(events[0].data)["type"] == "message_start"


def test_sse_reader_flushes_an_unterminated_last_event():
    reader = SSEReader()
    comment = reader.feed(b": comment\n\nevent: x\ndata: 1\ndata: 2")
    assert [(e.event, e.data, e.raw) for e in comment] == [(None, b"", b": comment\n\n")]
    events, rest = reader.flush()
    assert [(e.event, e.data) for e in events] == [("x", b"1\n2")]
    assert rest == b"event: x\ndata: 1\ndata: 2"


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_json_array_reader_handles_escapes_and_nesting_across_chunks(size):
    elements = [{"text": 'a "quoted" } ] { [ \\ value'}, {"nested": [{"x": [1, 2]}, "}"]}, {}]
    body = ("[" + ",\r\n".join(json.dumps(e) for e in elements) + "]").encode()
    reader = JSONArrayReader()
    found = []
    for start in range(0, len(body), size):
        found.extend(reader.feed(body[start : start + size]))
    assert [json.loads(f) for f in found] == elements


def test_include_usage_rewrite_and_null_usage_removal():
    body = {"model": "m", "stream": True, "stream_options": {"include_obfuscation": False}}
    rewritten = json.loads(add_include_usage(body))
    assert rewritten["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert add_include_usage({**body, "stream_options": {"include_usage": True}}) is None
    assert (
        remove_null_usage(b'data: {"id":"1","choices":[],"usage":null}\n\n')
        == b'data: {"id":"1","choices":[]}\n\n'
    )
    content = b'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n'
    assert remove_null_usage(content) == content
