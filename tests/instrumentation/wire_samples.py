"""Provider responses in their real wire formats (JSON bodies, SSE events, Gemini streamed JSON).

The shapes follow each provider's API reference; the usage blocks are parameters so tests can cover
every row of the usage-mapping table.
"""

from __future__ import annotations

import json
from typing import Any

OPENAI_CHAT_USAGE: dict[str, Any] = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 128,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 900,
    "input_tokens_details": {"cached_tokens": 512},
    "output_tokens": 250,
    "output_tokens_details": {"reasoning_tokens": 200},
    "total_tokens": 1150,
}
EMBEDDINGS_USAGE: dict[str, Any] = {"prompt_tokens": 16, "total_tokens": 16}
COMPLETIONS_USAGE: dict[str, Any] = {"prompt_tokens": 40, "completion_tokens": 16, "total_tokens": 56}
ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 2000,
    "cache_read_input_tokens": 3000,
    "output_tokens": 420,
    "service_tier": "standard",
}
GEMINI_USAGE: dict[str, Any] = {
    "promptTokenCount": 800,
    "cachedContentTokenCount": 600,
    "candidatesTokenCount": 150,
    "thoughtsTokenCount": 90,
    "totalTokenCount": 1040,
}


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


# --- OpenAI chat completions ---------------------------------------------------------------------


def openai_chat_json(model: str, usage: dict[str, Any] | None = OPENAI_CHAT_USAGE) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": f"{model}-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "service_tier": "default",
    }
    if usage is not None:
        body["usage"] = usage
    return body


def openai_chat_sse(
    model: str, include_usage: bool, usage: dict[str, Any] = OPENAI_CHAT_USAGE
) -> list[bytes]:
    """The API's events; with ``include_usage`` each chunk has ``"usage":null``, plus a usage chunk."""
    base = {
        "id": "chatcmpl-stream1",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": f"{model}-2024-08-06",
        "system_fingerprint": "fp_1",
    }
    deltas = [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "stop"),
    ]
    events = []
    for delta, finish in deltas:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        events.append(sse(chunk))
    if include_usage:
        events.append(sse({**base, "choices": [], "usage": usage}))
    events.append(sse("[DONE]"))
    return events


# --- OpenAI legacy completions (/v1/completions) --------------------------------------------------


def openai_completions_json(model: str, usage: dict[str, Any] = COMPLETIONS_USAGE) -> dict[str, Any]:
    return {
        "id": "cmpl-legacy1",
        "object": "text_completion",
        "created": 1_760_000_000,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"text": "Hello there", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": usage,
    }


def openai_completions_sse(
    model: str, include_usage: bool, usage: dict[str, Any] = COMPLETIONS_USAGE
) -> list[bytes]:
    """Like chat streams: with ``include_usage``, ``"usage":null`` on each chunk plus a usage chunk."""
    base = {"id": "cmpl-stream1", "object": "text_completion", "created": 1_760_000_000, "model": model}
    events = []
    for text, finish in (("Hel", None), ("lo", None), ("", "stop")):
        chunk = {**base, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        events.append(sse(chunk))
    if include_usage:
        events.append(sse({**base, "choices": [], "usage": usage}))
    events.append(sse("[DONE]"))
    return events


# --- OpenAI Responses ----------------------------------------------------------------------------


def responses_json(
    model: str, usage: dict[str, Any] = RESPONSES_USAGE, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": "resp_0123",
        "object": "response",
        "created_at": 1_760_000_000,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": f"{model}-2025-04-14",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def responses_sse(model: str, usage: dict[str, Any] = RESPONSES_USAGE) -> list[bytes]:
    done = responses_json(model, usage)
    created = {**done, "status": "in_progress", "output": [], "usage": None}
    return [
        sse({"type": "response.created", "sequence_number": 0, "response": created}, "response.created"),
        sse(
            {"type": "response.in_progress", "sequence_number": 1, "response": created},
            "response.in_progress",
        ),
        sse(
            {
                "type": "response.output_text.delta",
                "sequence_number": 2,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi",
                "logprobs": [],
            },
            "response.output_text.delta",
        ),
        sse({"type": "response.completed", "sequence_number": 3, "response": done}, "response.completed"),
    ]


# --- OpenAI embeddings ---------------------------------------------------------------------------


def embeddings_json(model: str, count: int, usage: dict[str, Any] = EMBEDDINGS_USAGE) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, -0.2, 0.3]} for i in range(count)],
        "model": model,
        "usage": usage,
    }


# --- Anthropic messages --------------------------------------------------------------------------


def anthropic_json(model: str, usage: dict[str, Any] = ANTHROPIC_USAGE) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def anthropic_sse(model: str, usage: dict[str, Any] = ANTHROPIC_USAGE) -> list[bytes]:
    """message_start has output 1; each message_delta repeats cumulative counts (never increments)."""
    start_usage = {**usage, "output_tokens": 1}
    message = {**anthropic_json(model, start_usage), "content": [], "stop_reason": None}
    return [
        sse({"type": "message_start", "message": message}, "message_start"),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
            "content_block_delta",
        ),
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo!"}},
            "content_block_delta",
        ),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": None, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"] // 2},
            },
            "message_delta",
        ),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {
                    "input_tokens": usage["input_tokens"],
                    "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                    "cache_read_input_tokens": usage["cache_read_input_tokens"],
                    "output_tokens": usage["output_tokens"],
                },
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]


# --- Gemini --------------------------------------------------------------------------------------


def gemini_chunk(model: str, text: str, usage: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "gem-resp-1"}
    if usage is not None:
        chunk["usageMetadata"] = usage
    return chunk


def gemini_json(model: str, usage: dict[str, Any] = GEMINI_USAGE) -> dict[str, Any]:
    return gemini_chunk(model, "Hello", usage, "STOP")


def gemini_stream_chunks(model: str, usage: dict[str, Any] = GEMINI_USAGE) -> list[dict[str, Any]]:
    partial = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
    return [
        gemini_chunk(model, "Hel", partial, None),
        gemini_chunk(model, "lo", partial, None),
        gemini_chunk(model, "!", usage, "STOP"),
    ]


def gemini_sse(model: str, usage: dict[str, Any] = GEMINI_USAGE) -> list[bytes]:
    return [f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in gemini_stream_chunks(model, usage)]


def gemini_json_array(model: str, usage: dict[str, Any] = GEMINI_USAGE) -> list[bytes]:
    """The streamed JSON array (no ``alt=sse``), split the way the server flushes it."""
    chunks = [json.dumps(chunk, indent=2) for chunk in gemini_stream_chunks(model, usage)]
    return [b"[" + chunks[0].encode(), *(b",\r\n" + c.encode() for c in chunks[1:]), b"]"]
