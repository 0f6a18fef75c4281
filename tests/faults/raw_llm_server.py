"""A loopback HTTP server that answers with exactly the bytes it is told to: malformed JSON, a broken SSE
event, a stream that stops mid-way without its terminating chunk. For the instrumentation fault tests
(the well-behaved fake provider is ``tests/instrumentation/fake_llm_server.py``).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RawAnswer:
    """``pieces`` are written one by one; with ``chunked`` each is one HTTP chunk. ``cut`` drops the
    connection after the pieces, without the terminating chunk (a stream that breaks)."""

    status: int = 200
    content_type: str = "application/json"
    pieces: list[bytes] = field(default_factory=list)
    chunked: bool = False
    cut: bool = False
    delay_seconds: float = 0.0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up in these tests; that is expected."""


class RawLLMServer:
    def __init__(self) -> None:
        self.answer = RawAnswer()
        self._release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RawLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(server: RawLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            answer = server.answer
            if answer.delay_seconds:
                server._release.wait(answer.delay_seconds)  # a slow upstream, for client timeouts
            self.send_response(answer.status)
            self.send_header("content-type", answer.content_type)
            if answer.chunked:
                self.send_header("transfer-encoding", "chunked")
            else:
                self.send_header("content-length", str(sum(len(p) for p in answer.pieces)))
            if answer.cut:
                self.send_header("connection", "close")
            self.end_headers()
            for piece in answer.pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if answer.chunked else piece)
                self.wfile.flush()
            if answer.cut:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if answer.chunked:
                self.wfile.write(b"0\r\n\r\n")

    return Handler
