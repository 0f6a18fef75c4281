"""The stream fast path: chunks of whole content events skip event-by-event parsing, and nothing changes.

However the server cuts its stream into chunks, the app must read exactly the bytes it would have read
without spanledger, and the span must carry the usage, id, model and finish reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
import wire_samples as samples

from spanledger.instrumentation.wire_openai import ChatCompletionsReader, remove_all_null_usage

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}


class ChunkedStream(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


def _split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


CHUNKINGS = {
    "one event per chunk": lambda events: events,
    "all events in one chunk": lambda events: [b"".join(events)],
    "pairs of events": lambda events: [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)],
    "cut inside events": lambda events: _split_every(b"".join(events), 37),
    "cut between the two newlines": lambda events: (
        [e[:-1] for e in events[:1]] + [b"\n" + b"".join(events[1:])]
    ),
}


@pytest.mark.parametrize("chunking", CHUNKINGS.values(), ids=CHUNKINGS.keys())
def test_any_chunking_gives_the_app_the_same_bytes_and_the_span_the_usage(spans, chunking):
    def handler(request: httpx2.Request) -> httpx2.Response:
        include = b'"include_usage":true' in request.content
        events = samples.openai_chat_sse("gpt-4o", include_usage=include)
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=ChunkedStream(chunking(events))
        )

    with (
        httpx2.Client(transport=httpx2.MockTransport(handler)) as http,
        http.stream("POST", "https://api.openai.com/v1/chat/completions", json=BODY) as response,
    ):
        seen = b"".join(response.iter_bytes())
    assert seen == b"".join(samples.openai_chat_sse("gpt-4o", include_usage=False))
    attributes = dict(spans.one().attributes)
    assert attributes["gen_ai.usage.input_tokens"] == 1200
    assert attributes["gen_ai.usage.output_tokens"] == 300
    assert attributes["gen_ai.response.id"] == "chatcmpl-stream1"
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_can_skip_only_content_events_after_the_first():
    events = samples.openai_chat_sse("gpt-4o", include_usage=True)
    first, content, finish, usage_only, done = events[0], events[1], events[3], events[4], events[5]
    reader = ChatCompletionsReader()
    assert not reader.can_skip_events(content)  # nothing read yet: the id and model are still unknown
    reader.read_event(None, first[len(b"data: ") : -2])
    assert reader.can_skip_events(content)
    assert reader.can_skip_events(content + content + done)
    assert not reader.can_skip_events(finish)
    assert not reader.can_skip_events(usage_only)
    assert not reader.can_skip_events(content + usage_only)  # a real usage beside a null one


def test_remove_all_null_usage_drops_one_member_per_event_and_keeps_content():
    event = b'data: {"id":"c","choices":[{"delta":{"content":"\\"usage\\":null"}}],"usage":null}\n\n'
    stripped = remove_all_null_usage(event + event)
    assert stripped == (b'data: {"id":"c","choices":[{"delta":{"content":"\\"usage\\":null"}}]}\n\n') * 2
    first_member = b'data: {"usage":null,"id":"c"}\n\n'
    assert remove_all_null_usage(first_member) == b'data: {"id":"c"}\n\n'
    assert remove_all_null_usage(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"
