"""Shared pieces of the receiver benchmarks: realistic OTLP requests, a fresh ledger, ``spanledger serve``.

Imported by ``benchmarks/ingest.py``, ``decode_map.py`` and ``receiver_memory.py`` as a sibling module:
``benchmarks/`` is not a package, and running ``python benchmarks/<name>.py`` puts ``benchmarks/`` first
on ``sys.path``. Tests do not import from here (benchmarks are not part of the product).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url

__all__ = [
    "METHOD",
    "SPANS_PER_REQUEST",
    "Receiver",
    "build_request",
    "connect",
    "fresh_ledger",
    "request_rounds",
    "start_receiver",
]

SPANS_PER_REQUEST = 512
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _kv(key: str, value: bool | int | str) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _genai_attributes(rng: random.Random, n: int) -> dict[str, bool | int | str]:
    provider = rng.choice(["openai", "anthropic", "gcp.gen_ai"])
    attributes: dict[str, bool | int | str] = {
        "gen_ai.provider.name": provider,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": {
            "openai": "gpt-4o",
            "anthropic": "claude-sonnet-4-5",
            "gcp.gen_ai": "gemini-2.5-flash",
        }[provider],
        "gen_ai.response.model": {
            "openai": "gpt-4o-2024-08-06",
            "anthropic": "claude-sonnet-4-5-20250929",
            "gcp.gen_ai": "gemini-2.5-flash",
        }[provider],
        "gen_ai.response.id": f"resp-{uuid.uuid4().hex}",
        "gen_ai.usage.input_tokens": rng.randint(10, 5000),
        "gen_ai.usage.output_tokens": rng.randint(1, 800),
        "gen_ai.usage.cache_read.input_tokens": rng.randint(0, 9),
        "customer.id": f"customer-{rng.randint(1, 25)}",
        "server.address": "api.example.com",
        "gen_ai.input.messages": "x" * 600,  # prompts ride along and must be skipped cheaply
    }
    if n % 3 == 0:
        attributes["gen_ai.usage.total_tokens"] = int(attributes["gen_ai.usage.input_tokens"]) + int(
            attributes["gen_ai.usage.output_tokens"]
        )
    return attributes


def _other_attributes(rng: random.Random) -> dict[str, bool | int | str]:
    return {
        "http.request.method": rng.choice(["GET", "POST"]),
        "url.path": f"/api/items/{rng.randint(1, 10_000)}",
        "http.response.status_code": 200,
        "server.address": "shop.internal",
        "db.system.name": "postgresql",
        "db.query.text": "SELECT * FROM items WHERE id = $1",
    }


def build_request(rng: random.Random, spans_per_request: int = SPANS_PER_REQUEST) -> bytes:
    """An encoded ``ExportTraceServiceRequest``: every third span GenAI (one usage event each, unique
    response id), the others HTTP/database spans; all of one resource and scope."""
    now = time.time_ns()
    spans = []
    for n in range(spans_per_request):
        attributes = _genai_attributes(rng, n) if n % 3 == 0 else _other_attributes(rng)
        spans.append(
            Span(
                trace_id=rng.randbytes(16),
                span_id=rng.randbytes(8),
                name="chat" if n % 3 == 0 else "GET /api/items",
                start_time_unix_nano=now - 1_000_000,
                end_time_unix_nano=now,
                attributes=[_kv(k, v) for k, v in attributes.items()],
            )
        )
    resource = [
        _kv("service.name", "shop"),
        _kv("service.version", "1.2.3"),
        _kv("deployment.environment.name", "prod"),
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": resource},
                scope_spans=[ScopeSpans(scope={"name": "bench", "version": "1"}, spans=spans)],
            )
        ]
    )
    return request.SerializeToString()


def request_rounds(rounds: int, requests: int) -> Iterator[tuple[int, list[bytes]]]:
    """``(round number, requests)`` for each round: fresh requests every round, seeded by the round number,
    so the benchmarks that interleave measurements send the same spans (timestamps aside) run after run."""
    for round_number in range(rounds):
        rng = random.Random(42 + round_number)
        yield round_number, [build_request(rng) for _ in range(requests)]


@contextmanager
def fresh_ledger(postgres: str | None) -> Iterator[str]:
    """The URL of an empty, not yet migrated ledger: a temporary SQLite file, or with ``postgres`` a
    schema of its own on that database; deleted or dropped on exit (a long run leaves gigabytes)."""
    if not postgres:
        with tempfile.TemporaryDirectory(prefix="spanledger-bench-", ignore_cleanup_errors=True) as directory:
            yield f"sqlite:///{os.path.join(directory, 'bench.db')}"
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine_from_url(postgres)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Receiver:
    """A ``spanledger serve`` subprocess and the ports it listens on."""

    process: subprocess.Popen[str]
    grpc_port: int
    http_port: int | None
    # The last lines it printed (its log), kept for a report when something goes wrong.
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful shutdown that drains the commit queue), then wait; the exit code."""
        self.process.terminate()
        return self.process.wait(timeout)


def start_receiver(
    database_url: str, *, http: bool = False, env: Mapping[str, str] | None = None, workers: int = 1
) -> Receiver:
    """Start ``spanledger serve`` on free loopback ports (gRPC; HTTP too if ``http``) over an already
    migrated ledger, with ``env`` added to this process's environment and ``workers`` processes sharing
    the ports; returns once it listens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from spanledger.billing.cli import main; main()",
            "--database-url",
            database_url,
            "serve",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0" if http else "off",
            "--no-migrate",
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        found = re.search(r"OTLP/gRPC on (\d+), OTLP/HTTP on (\d+|off)", line)
        if found:
            http_port = None if found.group(2) == "off" else int(found.group(2))
            receiver = Receiver(process, int(found.group(1)), http_port)
            receiver.output.extend(seen)
            # Keep draining its output, or a chatty receiver blocks on a full pipe.
            threading.Thread(target=_drain, args=(process, receiver.output), daemon=True).start()
            return receiver
    raise SystemExit(f"receiver did not start: exit {process.wait()}\n{''.join(seen[-20:])}")


def _drain(process: subprocess.Popen[str], output: deque[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)


def connect(
    ports: list[int], channels_per_port: int = 1
) -> tuple[list[grpc.Channel], list[grpc.UnaryUnaryMultiCallable]]:
    """``channels_per_port`` insecure channels per receiver port, each its own TCP connection (so the
    workers of a ``serve --workers`` share them out), and their raw-bytes ``Export`` stubs; connections
    are warmed with an empty request (so connection set-up is not timed)."""
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels_per_port)
        for port in ports
    ]
    stubs = [channel.unary_unary(METHOD) for channel in channels]
    for stub in stubs:
        stub(b"", timeout=30)
    return channels, stubs
