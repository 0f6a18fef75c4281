"""An example OpenAI-compatible chat server for the demo — an example only, never used by spanledger.

It answers ``POST /v1/chat/completions`` like the real API does, as JSON or as a server-sent-event
stream, so the demo app can use the real ``openai`` SDK without an API key or a network:

- ``usage`` is realistic: prompt tokens estimated from the message text (about 4 characters a token),
  completion tokens from the reply, and ``prompt_tokens_details.cached_tokens`` from a simulated
  prompt cache (a prompt prefix of at least 1,024 tokens seen before is cached, in steps of 128 tokens,
  as OpenAI's automatic prompt caching does).
- A stream sends the usage chunk (``choices: []``) only when the request asked for it with
  ``stream_options.include_usage``, and then ``"usage": null`` on every other chunk.

Every answer is appended to a JSON Lines log (``--log``): response id, model, whether it streamed, and
the usage it carried — the ground truth the demo's billing figures are checked against.

    python examples/demo/llm_server.py --port-file port.txt --log served.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role and separators, roughly what chat formatting costs per message
CACHE_MINIMUM_TOKENS = 1024
CACHE_STEP_TOKENS = 128
WORDS_PER_CHUNK = 3

_REPLY = (
    "Here is what matters in the text you sent: the parties, what each of them owes, the dates by "
    "which it is owed, and what happens when a date is missed. Payment is due within thirty days of "
    "each invoice; late amounts carry interest; either side may end the agreement with ninety days "
    "notice; liability is capped at the fees of the last twelve months; disputes go to arbitration."
)


@dataclass
class ChatServer:
    """The server's state: the simulated prompt cache, the id counter and the answer log."""

    log_path: Path | None = None
    _seen_prefixes: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def prompt_usage(self, model: str, messages: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """(prompt tokens, cached tokens) for ``messages``; remembers every prefix for later calls."""
        tokens_at_boundary: list[int] = []
        fingerprints: list[str] = []
        total = 3  # every reply is primed with a few tokens
        digest = hashlib.sha256(model.encode())
        for message in messages:
            total += TOKENS_PER_MESSAGE + _text_tokens(_message_text(message))
            digest.update(json.dumps(message, sort_keys=True).encode())
            tokens_at_boundary.append(total)
            fingerprints.append(digest.copy().hexdigest())
        cached_prefix = 0
        # The last message is the new turn; the cache holds prefixes of earlier prompts.
        for tokens, fingerprint in zip(tokens_at_boundary[:-1], fingerprints[:-1], strict=True):
            if fingerprint in self._seen_prefixes:
                cached_prefix = tokens
        self._seen_prefixes.update(fingerprints)
        cached = 0
        if cached_prefix >= CACHE_MINIMUM_TOKENS:
            cached = cached_prefix - cached_prefix % CACHE_STEP_TOKENS
        return total, cached

    def next_id(self) -> str:
        return f"chatcmpl-demo{next(self._ids):06d}"

    def record(self, entry: dict[str, Any]) -> None:
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _reply(max_tokens: int | None) -> tuple[list[str], str]:
    """The reply's words and its finish reason (``length`` when ``max_tokens`` cut it short)."""
    words = _REPLY.split()
    if max_tokens is not None and max_tokens < len(words):
        return words[:max_tokens], "length"
    return words, "stop"


def _usage(prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def create_app(server: ChatServer) -> Starlette:
    """The Starlette app: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

    async def chat_completions(request: Request) -> Response:
        if not request.headers.get("authorization", "").removeprefix("Bearer ").strip():
            return _error(401, "You didn't provide an API key.", "invalid_request_error", "missing_api_key")
        try:
            body = json.loads(await request.body())
            model = str(body["model"])
            messages = list(body["messages"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "The body must be JSON with 'model' and 'messages'.", "invalid_request_error")
        prompt_tokens, cached_tokens = server.prompt_usage(model, messages)
        words, finish_reason = _reply(body.get("max_completion_tokens") or body.get("max_tokens"))
        usage = _usage(prompt_tokens, cached_tokens, len(words))
        response_id, created = server.next_id(), int(time.time())
        stream = bool(body.get("stream"))
        include_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        server.record(
            {
                "id": response_id,
                "model": model,
                "stream": stream,
                "include_usage": include_usage,
                "usage": usage,
            }
        )
        if not stream:
            return JSONResponse(
                {
                    "id": response_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                            "logprobs": None,
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": "fp_demo",
                }
            )
        chunks = _stream_chunks(response_id, created, model, words, finish_reason, usage, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream")

    async def models(request: Request) -> Response:
        names = ("gpt-4o", "gpt-4o-mini")
        return JSONResponse(
            {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "demo"} for n in names]}
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


async def _stream_chunks(
    response_id: str,
    created: int,
    model: str,
    words: list[str],
    finish_reason: str,
    usage: dict[str, Any],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The SSE events of a streamed answer, one flush each, as the real API sends them."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_demo",
            "choices": choices,
        }
        if include_usage:
            data["usage"] = None
        data.update(extra)
        return f"data: {json.dumps(data)}\n\n".encode()

    def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    yield chunk(delta({"role": "assistant", "content": "", "refusal": None}))
    for start in range(0, len(words), WORDS_PER_CHUNK):
        piece = " ".join(words[start : start + WORDS_PER_CHUNK])
        yield chunk(delta({"content": piece if start == 0 else " " + piece}))
        await asyncio.sleep(0)
    yield chunk(delta({}, finish_reason))
    if include_usage:
        yield chunk([], usage=usage)
    yield b"data: [DONE]\n\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Example OpenAI-compatible chat server (demo only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument("--log", type=Path, help="append one JSON line per answer here")
    args = parser.parse_args(argv)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)  # connections made as soon as the port file exists wait in the backlog
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(ChatServer(log_path=args.log)), log_level="warning", lifespan="off")
    if args.port_file is not None:
        args.port_file.write_text(f"{port}\n", encoding="utf-8")
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
