"""Ingest throughput: OTLP/gRPC → ledger, against the ceiling of decoding and walking the same requests.

    .venv/bin/python benchmarks/ingest.py                      # SQLite (a temporary file)
    .venv/bin/python benchmarks/ingest.py --postgres postgresql://postgres@127.0.0.1:5432/test --receivers 2

Requests are realistic: 512 spans each, about a third GenAI (several providers, customers and dialects),
the rest HTTP/database spans with their usual attributes. Receivers run as ``spanledger serve``
subprocesses; the client sends pre-encoded requests from several threads so it measures the receiver.
The ceiling is single-process Python: parse each request and walk every attribute of every span.
Rounds interleave the two measurements (fresh requests each round, the same receivers and ledger) and the
best of each is reported, so a busy machine disturbs the ratio less.
Not a test: figures vary by machine. Target: end-to-end ≥ 0.5 of the ceiling on SQLite.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.migrate import upgrade

SPANS_PER_REQUEST = 512
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _kv(key, value):
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _genai_attributes(rng, n):
    provider = rng.choice(["openai", "anthropic", "gcp.gen_ai"])
    attributes = {
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
        attributes["gen_ai.usage.total_tokens"] = (
            attributes["gen_ai.usage.input_tokens"] + attributes["gen_ai.usage.output_tokens"]
        )
    return attributes


def _other_attributes(rng):
    return {
        "http.request.method": rng.choice(["GET", "POST"]),
        "url.path": f"/api/items/{rng.randint(1, 10_000)}",
        "http.response.status_code": 200,
        "server.address": "shop.internal",
        "db.system.name": "postgresql",
        "db.query.text": "SELECT * FROM items WHERE id = $1",
    }


def build_request(rng: random.Random) -> bytes:
    now = time.time_ns()
    spans = []
    for n in range(SPANS_PER_REQUEST):
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


def ceiling(bodies: list[bytes]) -> float:
    """Spans/s of parsing each request and reading every attribute of every span, in Python."""
    started = time.perf_counter()
    walked = 0
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for kv in resource_spans.resource.attributes:
                _ = (kv.key, kv.value.WhichOneof("value"))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _ = (span.trace_id.hex(), span.span_id.hex(), span.end_time_unix_nano)
                    for kv in span.attributes:
                        _ = (kv.key, kv.value.WhichOneof("value"))
                    walked += 1
    return walked / (time.perf_counter() - started)


def start_receiver(database_url: str) -> tuple[subprocess.Popen, int]:
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
            "off",
            "--no-migrate",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"OTLP/gRPC on (\d+)", line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, int(found.group(1))
    raise SystemExit(f"receiver did not start: exit {process.wait()}")


def end_to_end(bodies: list[bytes], ports: list[int], clients: int) -> float:
    """Spans/s from the first request sent to the last acknowledged (all acknowledged = all committed)."""
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    stubs = [channel.unary_unary(METHOD) for channel in channels]
    for stub in stubs:  # warm the connections
        stub(build_request(random.Random(1))[:0], timeout=30)
    work = list(enumerate(bodies))
    lock = threading.Lock()

    def client(number: int) -> None:
        stub = stubs[number % len(stubs)]
        while True:
            with lock:
                if not work:
                    return
                _, body = work.pop()
            stub(body, timeout=60)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for channel in channels:
        channel.close()
    return len(bodies) * SPANS_PER_REQUEST / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--receivers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL URL; a fresh schema is created and dropped")
    args = parser.parse_args()

    schema = None
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine_from_url(args.postgres)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        database_url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        backend = f"PostgreSQL, {args.receivers} receiver(s)"
    else:
        directory = tempfile.mkdtemp()
        database_url = f"sqlite:///{os.path.join(directory, 'bench.db')}"
        backend = f"SQLite, {args.receivers} receiver(s)"
    engine = create_engine_from_url(database_url)
    upgrade(engine)
    receivers = [start_receiver(database_url) for _ in range(args.receivers)]
    ceilings: list[float] = []
    rates: list[float] = []
    try:
        for round_number in range(args.rounds):
            rng = random.Random(42 + round_number)
            bodies = [build_request(rng) for _ in range(args.requests)]
            ceilings.append(ceiling(bodies))
            rates.append(end_to_end(bodies, [port for _, port in receivers], args.clients))
            print(
                f"round {round_number + 1}: ceiling {ceilings[-1]:,.0f} spans/s, "
                f"end to end {rates[-1]:,.0f} spans/s",
                flush=True,
            )
    finally:
        for process, _ in receivers:
            process.terminate()
            process.wait(30)
    with engine.connect() as connection:
        stored = connection.execute(text("select count(*) from usage_events")).scalar_one()
    engine.dispose()
    if schema:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    spans = args.rounds * args.requests * SPANS_PER_REQUEST
    print(
        f"requests: {args.rounds} rounds x {args.requests} x {SPANS_PER_REQUEST} spans = {spans} spans, "
        f"{stored} usage events stored"
    )
    print(f"ceiling (decode + walk attributes, Python), best round: {max(ceilings):,.0f} spans/s")
    print(f"OTLP/gRPC -> {backend}, best round: {max(rates):,.0f} spans/s")
    print(f"ratio: {max(rates) / max(ceilings):.2f}")


if __name__ == "__main__":
    main()
