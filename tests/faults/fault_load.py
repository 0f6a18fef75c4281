"""Tools of the fault tests: a load generator that keeps its own books, a killable ``spanledger serve``
subprocess, a loopback TCP proxy that can cut a database off, and ledger read-backs.

Everything listens on 127.0.0.1 and every wait is bounded (a deadline, never an open-ended loop).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the load generator -----------------------------------------------------------------------------


@dataclass
class LoadGenerator:
    """Billable chat spans for a few customers; counts what was *acknowledged* per customer.

    Every span has its own response id, so the ledger must hold exactly one event per span sent.
    """

    customers: tuple[str, ...] = ("acme", "globex", "initech")
    seed: int = 7
    acknowledged_ids: list[str] = field(default_factory=list)
    totals: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._exporter = InMemorySpanExporter()
        self._provider = TracerProvider(resource=Resource.create({"service.name": "fault-load"}))
        self._provider.add_span_processor(SimpleSpanProcessor(self._exporter))
        self._tracer = self._provider.get_tracer("fault.load", "1.0")
        self._next = 0

    def batch(self, size: int) -> tuple[list[ReadableSpan], list[tuple[str, str, int, int]]]:
        """``size`` new spans, and what each one bills (response id, customer, input, output)."""
        self._exporter.clear()
        books = []
        for _ in range(size):
            self._next += 1
            response_id = f"chatcmpl-fault-{self.seed}-{self._next:06d}"
            customer = self._random.choice(self.customers)
            input_tokens, output_tokens = self._random.randint(1, 5000), self._random.randint(0, 2000)
            attributes = {
                "gen_ai.provider.name": "openai",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.id": response_id,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "customer.id": customer,
            }
            with self._tracer.start_as_current_span("chat gpt-4o", attributes=attributes):
                pass
            books.append((response_id, customer, input_tokens, output_tokens))
        return list(self._exporter.get_finished_spans()), books

    def acknowledge(self, books: list[tuple[str, str, int, int]]) -> None:
        for response_id, customer, input_tokens, output_tokens in books:
            self.acknowledged_ids.append(response_id)
            self.totals[customer][0] += input_tokens
            self.totals[customer][1] += output_tokens

    def expected_totals(self) -> dict[str, tuple[int, int]]:
        return {customer: (i, o) for customer, (i, o) in self.totals.items()}


# --- ledger read-backs --------------------------------------------------------------------------------


def ledger_books(database_url: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Every stored response id (with repeats, if any) and per-customer (input, output) token sums."""
    engine = create_engine_from_url(database_url)
    try:
        with engine.connect() as connection:
            ids = [row[0] for row in connection.execute(text("SELECT response_id FROM usage_events"))]
            sums = connection.execute(
                text(
                    "SELECT c.external_id, SUM(e.input_tokens), SUM(e.output_tokens) "
                    "FROM usage_events e JOIN customers c ON c.id = e.customer_id GROUP BY c.external_id"
                )
            )
            totals = {customer: (int(i or 0), int(o or 0)) for customer, i, o in sums}
    finally:
        engine.dispose()
    return ids, totals


# --- a killable receiver process ---------------------------------------------------------------------


class ServeProcess:
    """``spanledger serve`` in a subprocess on fixed loopback ports: a restart is found at the same place."""

    def __init__(self, database_url: str, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._log_dir = log_dir
        self._extra_env = extra_env or {}
        self._starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self._starts += 1
        log_path = self._log_dir / f"serve-{self._starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from spanledger.billing.cli import main; main()",
                    "--database-url",
                    self.database_url,
                    "serve",
                    "--grpc",
                    f"127.0.0.1:{self.grpc_port}",
                    "--http",
                    f"127.0.0.1:{self.http_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SPANLEDGER_RETRY_AFTER_SECONDS": "0", **self._extra_env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = log_path.read_text(errors="replace")
            if re.search(r"OTLP/gRPC on \d+", output):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"spanledger serve exited {self.process.returncode}: {output}")
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"spanledger serve did not listen within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no drain, whatever was in flight is lost unacknowledged."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# --- a loopback TCP proxy that can cut the database off ---------------------------------------------


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`cut` drops every connection and refuses new ones
    (what a stopped database looks like to a client), :meth:`restore` lets connections through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._closing = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="cuttable-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # a stopped server: connection dropped at once
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        self._listener.close()
        self._thread.join(5)


def postgres_url_through(url: str, port: int) -> str:
    """``url`` (a test PostgreSQL URL) pointed at 127.0.0.1:``port`` instead of its own host and port."""
    return re.sub(r"@[^/@]+/", f"@127.0.0.1:{port}/", url, count=1)


def postgres_target(url: str) -> tuple[str, int]:
    found = re.search(r"@([^:/@]+)(?::(\d+))?/", url)
    assert found, url
    return found.group(1), int(found.group(2) or 5432)
