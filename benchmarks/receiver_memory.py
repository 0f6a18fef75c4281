"""Receiver memory under a sustained ingest: does the RSS of ``spanledger serve`` stay bounded?

    .venv/bin/python benchmarks/receiver_memory.py                        # SQLite, 300 s
    .venv/bin/python benchmarks/receiver_memory.py --duration 60          # a quick look
    .venv/bin/python benchmarks/receiver_memory.py --postgres postgresql://postgres@127.0.0.1:5432/test

One receiver (``spanledger serve``, OTLP/gRPC and OTLP/HTTP on loopback; ``--workers N`` processes) over a
fresh ledger (SQLite: a temporary file; PostgreSQL: a schema of its own, dropped afterwards) is fed for
``--duration`` seconds:

- ``--clients`` threads send realistic requests (512 spans, a third GenAI, each with a unique response
  id) over gRPC, one after the other, each retried on a "retry later" answer until acknowledged, as an
  OTLP exporter does;
- every ``--bad-every``-th request of a client is a bad one instead, in turn: a gRPC body over the
  decompressed-size limit, an undecodable gRPC body, a request with more spans than allowed, a gzip bomb
  over HTTP and an HTTP body over the request-size limit — each must be refused, and never stored;
- every ``--burst-every`` seconds ``--burst-size`` good requests are sent at once, more than the
  group-commit queue holds, so some are answered ``RESOURCE_EXHAUSTED`` (retry later) and retried.

The limits are set smaller than the defaults (see ``LIMITS``; ``--default-limits`` keeps the product's),
so the bounds are actually reached. The receiver's RSS (``VmRSS`` of it and any children, from
``/proc``) is sampled every second. Printed: spans sent / acknowledged / refused, usage events stored
against the GenAI spans acknowledged, RSS after the warm-up, median, maximum, the maximum of the first
and of the last minute and their ratio, and the least-squares trend after the warm-up.

Bounded means: last-minute maximum / first-minute maximum ≤ 1.1 (no growth trend). Not a test: figures
vary by machine and nothing is asserted about time or memory, but the exit status is 1 when the ledger
does not hold exactly the acknowledged GenAI spans (an event lost, or a refused one stored).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_load import SPANS_PER_REQUEST, Receiver, build_request, connect, fresh_ledger, start_receiver
from sqlalchemy import text

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.migrate import upgrade

# Smaller than the defaults (8 MiB, 64 MiB, 20000, 100000) so every bound is reached within minutes;
# a good request (512 spans) is about 290 kB and carries 171 usage events.
LIMITS = {
    "SPANLEDGER_MAX_REQUEST_BYTES": str(1024 * 1024),
    "SPANLEDGER_MAX_DECOMPRESSED_BYTES": str(2 * 1024 * 1024),
    "SPANLEDGER_MAX_SPANS_PER_REQUEST": "1000",
    "SPANLEDGER_MAX_PENDING_EVENTS": "2000",
}
# Advertised in RetryInfo; the clients wait about this long before a retry.
RETRY_AFTER_SECONDS = 0.2
# Answers after which an OTLP exporter sends the same request again.
RETRYABLE = {
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
BAD_KINDS = ("grpc-oversized", "grpc-undecodable", "grpc-too-many-spans", "http-gzip-bomb", "http-oversized")
TRACES_PATH = "/v1/traces"


def genai_spans(spans: int) -> int:
    """Usage events in a :func:`build_request` of ``spans`` spans: every third span is GenAI."""
    return len(range(0, spans, 3))


@dataclass
class Tally:
    """What the clients did and were answered, shared by all client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: int = 0
    spans_sent: int = 0  # every attempt, retries included
    spans_acknowledged: int = 0  # once per request
    spans_refused: int = 0  # every refused attempt of a good request (then retried)
    events_expected: int = 0  # GenAI spans acknowledged, less any rejected in a partial success
    given_up: int = 0  # good requests never acknowledged (their fate unknown)
    refusals: Counter[str] = field(default_factory=Counter)  # good requests: answer -> attempts
    bad: Counter[str] = field(default_factory=Counter)  # "kind: answer" -> count

    def sent(self, spans: int) -> None:
        with self.lock:
            self.attempts += 1
            self.spans_sent += spans

    def refused(self, spans: int, answer: str) -> None:
        with self.lock:
            self.spans_refused += spans
            self.refusals[answer] += 1

    def acknowledged(self, spans: int, events: int) -> None:
        with self.lock:
            self.spans_acknowledged += spans
            self.events_expected += events


@dataclass
class BadRequests:
    """Pre-built bad bodies (built once: refused requests cost the receiver the same every time)."""

    oversized: bytes
    undecodable: bytes
    too_many_spans: bytes
    gzip_bomb: bytes

    @classmethod
    def build(cls, limits: dict[str, str]) -> BadRequests:
        rng = random.Random(7)
        decompressed_limit = int(limits["SPANLEDGER_MAX_DECOMPRESSED_BYTES"])
        too_many = int(limits["SPANLEDGER_MAX_SPANS_PER_REQUEST"]) + 200
        return cls(
            oversized=rng.randbytes(decompressed_limit + 512 * 1024),
            # 0xff starts a field with wire type 7, which does not exist: undecodable at the first byte.
            undecodable=b"\xff" + rng.randbytes(200 * 1024),
            too_many_spans=build_request(rng, too_many),
            gzip_bomb=_gzip_zeros(max(200 * 1024 * 1024, 4 * decompressed_limit)),
        )


def _gzip_zeros(size: int) -> bytes:
    """``size`` zero bytes gzipped (about 1000:1), compressed in slices so the client never holds them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    slice_ = bytes(1024 * 1024)
    parts = [compressor.compress(slice_) for _ in range(size // len(slice_))]
    parts.append(compressor.flush())
    return b"".join(parts)


def deliver(
    stub: grpc.UnaryUnaryMultiCallable, body: bytes, spans: int, tally: Tally, give_up: float
) -> None:
    """Send one good request until it is acknowledged (or ``give_up``, a monotonic time, has passed)."""
    rng = random.Random()
    while True:
        tally.sent(spans)
        try:
            answer = stub(body, timeout=60)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            tally.refused(spans, code.name)
            if code in RETRYABLE and time.monotonic() < give_up:
                time.sleep(RETRY_AFTER_SECONDS * (1 + rng.random()))
                continue
            with tally.lock:
                tally.given_up += 1
            return
        response = ExportTraceServiceResponse.FromString(answer)
        tally.acknowledged(spans, genai_spans(spans) - response.partial_success.rejected_spans)
        return


def send_bad(kind: str, stub: grpc.UnaryUnaryMultiCallable, http: httpx.Client, bad: BadRequests) -> str:
    """Send one bad request of ``kind``; its answer ("OK" would be a bug)."""
    if kind.startswith("grpc-"):
        body = {
            "grpc-oversized": bad.oversized,
            "grpc-undecodable": bad.undecodable,
            "grpc-too-many-spans": bad.too_many_spans,
        }[kind]
        try:
            stub(body, timeout=60)
        except grpc.RpcError as exc:
            return exc.code().name  # type: ignore[attr-defined]
        return "OK"
    headers = {"Content-Type": "application/x-protobuf"}
    if kind == "http-gzip-bomb":
        body, headers["Content-Encoding"] = bad.gzip_bomb, "gzip"
    else:
        body = bad.oversized
    try:
        return f"HTTP {http.post(TRACES_PATH, content=body, headers=headers).status_code}"
    except httpx.TransportError as exc:
        # The receiver may answer 413 and close before the whole oversized body is written.
        return type(exc).__name__


def client(
    number: int,
    stub: grpc.UnaryUnaryMultiCallable,
    http_port: int,
    bad: BadRequests,
    bad_every: int,
    tally: Tally,
    stop: threading.Event,
    give_up: float,
) -> None:
    rng = random.Random(1000 + number)
    kinds = BAD_KINDS[number % len(BAD_KINDS) :] + BAD_KINDS[: number % len(BAD_KINDS)]
    sent = 0
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
        while not stop.is_set():
            sent += 1
            if bad_every and sent % bad_every == 0:
                kind = kinds[(sent // bad_every) % len(kinds)]
                answer = send_bad(kind, stub, http, bad)
                with tally.lock:
                    tally.bad[f"{kind}: {answer}"] += 1
                continue
            deliver(stub, build_request(rng), SPANS_PER_REQUEST, tally, give_up)


def bursts(
    stub: grpc.UnaryUnaryMultiCallable,
    every: float,
    size: int,
    tally: Tally,
    stop: threading.Event,
    give_up: float,
    counter: list[int],
) -> None:
    """Every ``every`` seconds, ``size`` good requests at once (built beforehand, so they arrive together)."""
    rng = random.Random(99)
    while not stop.wait(every):
        bodies = [build_request(rng) for _ in range(size)]
        threads = [
            threading.Thread(target=deliver, args=(stub, body, SPANS_PER_REQUEST, tally, give_up))
            for body in bodies
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counter[0] += 1


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, in KiB (0 once it has exited)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        children: list[int] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                children.extend(int(child) for child in listed.read().split())
    except (FileNotFoundError, ProcessLookupError):
        return total
    return total + sum(rss_kib(child) for child in children)


def sample(pid: int, started: float, samples: list[tuple[float, int]], stop: threading.Event) -> None:
    while True:
        samples.append((time.monotonic() - started, rss_kib(pid)))
        if stop.wait(1.0):
            return


def trend_mib_per_minute(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time."""
    if len(points) < 2:
        return 0.0
    slope = statistics.linear_regression([t for t, _ in points], [kib for _, kib in points]).slope
    return slope * 60 / 1024


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of sending (default 300)")
    parser.add_argument("--warmup", type=float, default=30, help="first seconds left out of the RSS figures")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--bad-every", type=int, default=8, help="every n-th request of a client is bad")
    parser.add_argument("--burst-every", type=float, default=20)
    parser.add_argument("--burst-size", type=int, default=40)
    parser.add_argument(
        "--workers", type=int, default=1, help="serve --workers: receiver processes (RSS is their sum)"
    )
    parser.add_argument("--default-limits", action="store_true", help="the product's limits, not LIMITS")
    parser.add_argument(
        "--postgres", metavar="URL", help="PostgreSQL URL; a fresh schema is created and dropped"
    )
    args = parser.parse_args()
    if args.duration < args.warmup + 120:
        print("note: under two minutes after the warm-up, the first and last minute overlap", flush=True)

    env = {"SPANLEDGER_RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS)}
    if not args.default_limits:
        env.update(LIMITS)
    bad = BadRequests.build(
        LIMITS
        if not args.default_limits
        else {
            "SPANLEDGER_MAX_DECOMPRESSED_BYTES": str(64 * 1024 * 1024),
            "SPANLEDGER_MAX_SPANS_PER_REQUEST": "20000",
        }
    )
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"load average before: {load_average()}", flush=True)
    with fresh_ledger(args.postgres) as database_url:
        engine = create_engine_from_url(database_url)
        upgrade(engine)
        receiver = start_receiver(database_url, http=True, env=env, workers=args.workers)
        assert receiver.http_port is not None
        # With several workers, one connection per client, so the kernel spreads them over the workers.
        channels, stubs = connect([receiver.grpc_port], args.clients if args.workers > 1 else 1)
        tally = Tally()
        stop, stop_sampling = threading.Event(), threading.Event()
        samples: list[tuple[float, int]] = []
        burst_count = [0]
        started = time.monotonic()
        give_up = started + args.duration + 120  # in-flight requests get two minutes to be acknowledged
        sampler = threading.Thread(
            target=sample, args=(receiver.process.pid, started, samples, stop_sampling)
        )
        threads = [
            threading.Thread(
                target=client,
                args=(
                    n,
                    stubs[n % len(stubs)],
                    receiver.http_port,
                    bad,
                    args.bad_every,
                    tally,
                    stop,
                    give_up,
                ),
            )
            for n in range(args.clients)
        ]
        threads.append(
            threading.Thread(
                target=bursts,
                args=(stubs[0], args.burst_every, args.burst_size, tally, stop, give_up, burst_count),
            )
        )
        sampler.start()
        for thread in threads:
            thread.start()
        try:
            while (elapsed := time.monotonic() - started) < args.duration:
                time.sleep(min(30.0, args.duration - elapsed))
                last = samples[-1][1] / 1024 if samples else 0
                print(
                    f"  {time.monotonic() - started:5.0f} s: "
                    f"{tally.spans_acknowledged:,} spans acknowledged, "
                    f"RSS {last:.0f} MiB, load {load_average()}",
                    flush=True,
                )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            stop_sampling.set()
            sampler.join()
            for channel in channels:
                channel.close()
            exit_code = receiver.stop()
        elapsed = time.monotonic() - started
        with engine.connect() as connection:
            stored, distinct = connection.execute(
                text("select count(*), count(distinct response_id) from usage_events")
            ).one()
        engine.dispose()

    report(args, backend, tally, samples, burst_count[0], elapsed, stored, distinct, exit_code, receiver)
    if stored != tally.events_expected or distinct != stored:
        print(
            f"FAIL: {stored} events stored ({distinct} distinct response ids), "
            f"{tally.events_expected} acknowledged",
            file=sys.stderr,
        )
        return 1
    return 0


def report(
    args: argparse.Namespace,
    backend: str,
    tally: Tally,
    samples: list[tuple[float, int]],
    bursts_sent: int,
    elapsed: float,
    stored: int,
    distinct: int,
    exit_code: int,
    receiver: Receiver,
) -> None:
    limits = "product defaults" if args.default_limits else ", ".join(f"{k}={v}" for k, v in LIMITS.items())
    print(
        f"receiver memory, {backend}, {args.workers} worker(s), {args.duration:.0f} s, "
        f"{args.clients} clients; limits: {limits}"
    )
    print(
        f"good requests: {tally.attempts:,} attempts, {tally.spans_sent:,} spans sent, "
        f"{tally.spans_acknowledged:,} acknowledged ({tally.spans_acknowledged / elapsed:,.0f} spans/s), "
        f"{tally.spans_refused:,} refused and retried {dict(tally.refusals)}, {tally.given_up} given up; "
        f"{bursts_sent} bursts of {args.burst_size}"
    )
    print(f"bad requests (all must be refused): {dict(sorted(tally.bad.items()))}")
    print(
        f"usage events stored: {stored:,} ({distinct:,} distinct response ids); "
        f"GenAI spans acknowledged: {tally.events_expected:,} -> "
        f"{'nothing lost or doubled' if stored == tally.events_expected == distinct else 'MISMATCH'}"
    )
    measured = [(t, kib) for t, kib in samples if t >= args.warmup]
    if not measured:
        print("no RSS samples after the warm-up")
        return
    end = measured[-1][0]
    first = [kib for t, kib in measured if t < args.warmup + 60]
    last = [kib for t, kib in measured if t > end - 60]
    mib = [kib / 1024 for _, kib in measured]
    ratio = max(last) / max(first)
    print(
        f"RSS (MiB, {len(measured)} samples after a {args.warmup:.0f} s warm-up): start {mib[0]:.0f}, "
        f"p50 {statistics.median(mib):.0f}, max {max(mib):.0f}; first-minute max {max(first) / 1024:.0f}, "
        f"last-minute max {max(last) / 1024:.0f}, ratio {ratio:.2f} "
        f"({'bounded' if ratio <= 1.1 else 'GROWING'}: criterion ratio <= 1.1); "
        f"trend {trend_mib_per_minute(measured):+.1f} MiB/min"
    )
    minutes = [
        max((kib for t, kib in measured if start <= t < start + 60), default=0) / 1024
        for start in range(int(args.warmup), int(end) + 1, 60)
    ]
    print(f"RSS max per minute after the warm-up (MiB): {' '.join(f'{m:.0f}' for m in minutes)}")
    print(f"receiver exit status {exit_code}; load average after: {load_average()}")
    errors = [line.rstrip() for line in receiver.output if "Traceback" in line or "ERROR" in line]
    if errors:
        print(f"receiver log: {len(errors)} error line(s), the last: {errors[-1]}")


if __name__ == "__main__":
    sys.exit(main())
