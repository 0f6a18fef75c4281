"""Ingest throughput: OTLP/gRPC → ledger, against the ceiling of decoding and walking the same requests.

    .venv/bin/python benchmarks/ingest.py                      # SQLite (a temporary file)
    .venv/bin/python benchmarks/ingest.py --workers 2                          # SQLite, serve --workers 2
    .venv/bin/python benchmarks/ingest.py --postgres postgresql://postgres@127.0.0.1:5432/test --receivers 2

Requests are realistic: 512 spans each, about a third GenAI (several providers, customers and dialects),
the rest HTTP/database spans with their usual attributes. Receivers run as ``spanledger serve``
subprocesses (``--receivers`` of them on ports of their own, each with ``--workers`` processes sharing its
ports); the client sends pre-encoded requests from several threads, each over a connection of its own, so
it measures the receiver.
The ceiling is single-process Python: parse each request and walk every attribute of every span.
Rounds interleave the two measurements (fresh requests each round, the same receivers and ledger) and the
best of each is reported, so a busy machine disturbs the ratio less.
Not a test: figures vary by machine. Target: end-to-end ≥ 0.5 of the ceiling on SQLite.
"""

from __future__ import annotations

import argparse
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_load import SPANS_PER_REQUEST, connect, fresh_ledger, request_rounds, start_receiver
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.migrate import upgrade


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


def end_to_end(bodies: list[bytes], ports: list[int], clients: int) -> float:
    """Spans/s from the first request sent to the last acknowledged (all acknowledged = all committed)."""
    channels, stubs = connect(ports, channels_per_port=max(1, clients // len(ports)))
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
    parser.add_argument("--workers", type=int, default=1, help="processes per receiver (serve --workers)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL URL; a fresh schema is created and dropped")
    args = parser.parse_args()

    backend = (
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.receivers} receiver(s) "
        f"x {args.workers} worker(s)"
    )
    with fresh_ledger(args.postgres) as database_url:
        engine = create_engine_from_url(database_url)
        upgrade(engine)
        receivers = [start_receiver(database_url, workers=args.workers) for _ in range(args.receivers)]
        ceilings: list[float] = []
        rates: list[float] = []
        try:
            for round_number, bodies in request_rounds(args.rounds, args.requests):
                ceilings.append(ceiling(bodies))
                rates.append(end_to_end(bodies, [r.grpc_port for r in receivers], args.clients))
                print(
                    f"round {round_number + 1}: ceiling {ceilings[-1]:,.0f} spans/s, "
                    f"end to end {rates[-1]:,.0f} spans/s",
                    flush=True,
                )
        finally:
            for receiver in receivers:
                receiver.stop()
        with engine.connect() as connection:
            stored = connection.execute(text("select count(*) from usage_events")).scalar_one()
        engine.dispose()
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
