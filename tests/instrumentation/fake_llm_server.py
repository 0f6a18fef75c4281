"""A loopback HTTP server speaking the OpenAI, Anthropic and Gemini wire formats, for the real SDKs.

It answers like the real APIs: it reads the request (model, ``stream``, ``stream_options``), streams
SSE with chunked transfer encoding one event per flush, and only sends the OpenAI usage chunk when the
request asked for it. One-shot faults can be queued: an HTTP error, a stream cut in the middle, a
gzip-compressed answer.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import wire_samples as samples

_GEMINI = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Faults:
    status: int | None = None
    error_body: dict[str, Any] | None = None
    cut_after_events: int | None = None
    gzip: bool = False


@dataclass
class Usages:
    openai_chat: dict[str, Any] = field(default_factory=lambda: dict(samples.OPENAI_CHAT_USAGE))
    responses: dict[str, Any] = field(default_factory=lambda: dict(samples.RESPONSES_USAGE))
    embeddings: dict[str, Any] = field(default_factory=lambda: dict(samples.EMBEDDINGS_USAGE))
    completions: dict[str, Any] = field(default_factory=lambda: dict(samples.COMPLETIONS_USAGE))
    anthropic: dict[str, Any] = field(default_factory=lambda: dict(samples.ANTHROPIC_USAGE))
    gemini: dict[str, Any] = field(default_factory=lambda: dict(samples.GEMINI_USAGE))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (the broken-stream tests) are expected; keep the output clean."""


class FakeLLMServer:
    """Start with :meth:`start`; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self.usages = Usages()
        self.sent_bodies: list[bytes] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        self.requests.clear()
        self.sent_bodies.clear()
        self.faults = Faults()
        self.usages = Usages()

    def take_faults(self) -> Faults:
        faults, self.faults = self.faults, Faults()
        return faults

    # --- what to answer -------------------------------------------------------------------------

    def answer(self, request: RecordedRequest) -> tuple[str, Any]:
        """``("json", body)``, ``("sse", events)`` or ``("json_array", chunks)`` for a request."""
        path = request.path.split("?", 1)[0]
        gemini = _GEMINI.search(path)
        if gemini:
            model = gemini.group(1)
            if gemini.group(2) == "generateContent":
                return "json", samples.gemini_json(model, self.usages.gemini)
            if "alt=sse" in request.path:
                return "sse", samples.gemini_sse(model, self.usages.gemini)
            return "json_array", samples.gemini_json_array(model, self.usages.gemini)
        try:
            body = request.json()
        except ValueError:
            return "json", {"error": {"message": "invalid JSON body"}}
        model = body.get("model", "unknown")
        streaming = body.get("stream") is True
        if path.endswith("/chat/completions"):
            if streaming:
                include = (body.get("stream_options") or {}).get("include_usage") is True
                return "sse", samples.openai_chat_sse(model, include, self.usages.openai_chat)
            return "json", samples.openai_chat_json(model, self.usages.openai_chat)
        if path.endswith("/completions"):
            if streaming:
                include = (body.get("stream_options") or {}).get("include_usage") is True
                return "sse", samples.openai_completions_sse(model, include, self.usages.completions)
            return "json", samples.openai_completions_json(model, self.usages.completions)
        if path.endswith("/responses"):
            if streaming:
                return "sse", samples.responses_sse(model, self.usages.responses)
            return "json", samples.responses_json(model, self.usages.responses)
        if path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            return "json", samples.embeddings_json(model, count, self.usages.embeddings)
        if path.endswith("/messages"):
            if streaming:
                return "sse", samples.anthropic_sse(model, self.usages.anthropic)
            return "json", samples.anthropic_json(model, self.usages.anthropic)
        return "json", {"error": {"message": f"no such path {path}"}}


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            request = RecordedRequest(
                "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            server.requests.append(request)
            faults = server.take_faults()
            if faults.status is not None:
                error = faults.error_body or {"error": {"message": "fake failure", "type": "server_error"}}
                self._send_whole(faults.status, "application/json", json.dumps(error).encode(), False)
                return
            kind, payload = server.answer(request)
            if kind == "json":
                self._send_whole(200, "application/json", json.dumps(payload).encode(), faults.gzip)
                return
            content_type = "text/event-stream" if kind == "sse" else "application/json"
            self._send_chunked(content_type, payload, faults)

        def _send_whole(self, status: int, content_type: str, body: bytes, compress: bool) -> None:
            if compress:
                body = gzip.compress(body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if compress:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            server.sent_bodies.append(body)

        def _send_chunked(self, content_type: str, pieces: list[bytes], faults: Faults) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            if faults.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            sent = b""
            for index, piece in enumerate(_encode(pieces, faults.gzip)):
                if faults.cut_after_events is not None and index >= faults.cut_after_events:
                    # Drop the connection in the middle of the body: no terminating chunk.
                    self.wfile.flush()
                    self.close_connection = True
                    server.sent_bodies.append(sent)
                    return
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
                sent += piece
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            server.sent_bodies.append(sent)

    return Handler


def _encode(pieces: list[bytes], compress: bool) -> Iterator[bytes]:
    if not compress:
        yield from pieces
        return
    import zlib

    compressor = zlib.compressobj(wbits=31)
    for piece in pieces:
        out = compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
        yield out
    yield compressor.flush()
