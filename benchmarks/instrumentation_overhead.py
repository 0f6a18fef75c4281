"""Client-side overhead per LLM call: no instrumentation vs spanledger vs OpenLLMetry's OpenAI instrumentor.

Run:  .venv/bin/python benchmarks/instrumentation_overhead.py [--calls 300] [--rounds 15]

Every call goes through the real ``openai`` SDK to an in-process ``httpx2.MockTransport`` that answers
from prebuilt bytes (streamed like a real socket, so nothing is pre-read), so the figures are the SDK
plus the instrumentation and nothing else. Both instrumentations record into the same SDK tracer
provider with a span processor that drops spans. OpenLLMetry runs with content capture off
(``TRACELOOP_TRACE_CONTENT=false``). Modes are interleaved over many short rounds; two figures are
printed per mode: the fastest round minus the fastest uninstrumented round ("best"), and the median over
rounds of each round's time minus the uninstrumented time of the same round ("median"), which compares
modes under the same machine load. Both filter out interference from other processes on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator

os.environ["TRACELOOP_TRACE_CONTENT"] = "false"

import httpx2
import openai
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from spanledger.instrumentation import SpanledgerInstrumentor

MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 6,
    "total_tokens": 18,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
CHAT_JSON = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how are you?"},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()


def sse_events(include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06"}
    words = ["Hello", " there", ",", " how", " are", " you", "?"]
    events = []
    for index, word in enumerate([*words, None]):
        delta = {"content": word} if word is not None else {}
        finish = "stop" if word is None else None
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        if index == 0:
            delta["role"] = "assistant"
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    if include_usage:
        events.append(b"data: " + json.dumps({**base, "choices": [], "usage": USAGE}).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


class PrebuiltStream(httpx2.SyncByteStream):
    """Yields prebuilt chunks, like a socket would (so httpx does not pre-read the body)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks


# Built once: the mock server's own work must not count as anyone's overhead.
SSE_BY_INCLUDE_USAGE = {True: sse_events(True), False: sse_events(False)}


def handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if body.get("stream"):
        include = (body.get("stream_options") or {}).get("include_usage") is True
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=PrebuiltStream(SSE_BY_INCLUDE_USAGE[include]),
        )
    return httpx2.Response(
        200, headers={"content-type": "application/json"}, stream=PrebuiltStream([CHAT_JSON])
    )


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def measure(call: Callable[[], None], calls: int) -> float:
    """Microseconds per call."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per mode per round")
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DropExporter()))
    client = openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )

    def json_call() -> None:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def stream_call() -> None:
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass

    spanledger, peer = SpanledgerInstrumentor(), OpenAIInstrumentor()
    modes: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "none": (lambda: None, lambda: None),
        "spanledger": (
            lambda: spanledger.instrument(tracer_provider=provider),
            spanledger.uninstrument,
        ),
        "openllmetry": (lambda: peer.instrument(tracer_provider=provider), peer.uninstrument),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for mode, (on, off) in modes.items():
            on()
            try:
                for kind, call in (("non-stream", json_call), ("stream", stream_call)):
                    measure(call, max(50, options.calls // 20))  # warm-up
                    results.setdefault((mode, kind), []).append(measure(call, options.calls))
            finally:
                off()

    print(f"openai {openai.__version__}, {options.calls} calls x {options.rounds} rounds; µs per call")
    for kind in ("non-stream", "stream"):
        base = results[("none", kind)]
        best = {mode: min(results[(mode, kind)]) - min(base) for mode in ("spanledger", "openllmetry")}
        median = {
            mode: statistics.median(t - b for t, b in zip(results[(mode, kind)], base, strict=True))
            for mode in ("spanledger", "openllmetry")
        }
        print(
            f"{kind:>10}: uninstrumented {min(base):7.1f} best / {statistics.median(base):7.1f} median | "
            f"spanledger {best['spanledger']:+7.1f} / {median['spanledger']:+7.1f} | "
            f"openllmetry {best['openllmetry']:+7.1f} / {median['openllmetry']:+7.1f} | "
            f"ratio {best['spanledger'] / best['openllmetry']:4.2f}x best, "
            f"{median['spanledger'] / median['openllmetry']:4.2f}x median"
        )


if __name__ == "__main__":
    main()
