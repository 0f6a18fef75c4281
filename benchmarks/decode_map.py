"""Receiver CPU before storage: ``TraceIntake.map`` (decode + map to events) against the ingest ceiling.

    .venv/bin/python benchmarks/decode_map.py
    .venv/bin/python benchmarks/decode_map.py --requests 40 --rounds 7

The requests and the ceiling are those of ``benchmarks/ingest.py`` (imported, not copied; the requests come
from ``benchmarks/otlp_load.py``): 512 spans per request, a third GenAI. The ceiling parses each request with
protobuf and walks every attribute of every span in Python; ``TraceIntake.map`` runs on the same bodies in
the same process, with nothing stored. Rounds interleave the two (fresh requests each round) and the best of
each is reported, so a busy machine disturbs the ratio less.
Not a test: figures vary by machine. Target: map ≥ 1.0 × the ceiling.
"""

from __future__ import annotations

import argparse
import time

from ingest import ceiling
from otlp_load import SPANS_PER_REQUEST, request_rounds

from spanledger.exporter.group_commit import GroupCommitter
from spanledger.exporter.trace_intake import PayloadFormat, TraceIntake


def _no_database() -> None:
    # Never called: map() does not commit.
    raise AssertionError("the decode/map benchmark stores nothing")


def intake_map(intake: TraceIntake, bodies: list[bytes]) -> tuple[float, int]:
    """Spans/s of ``TraceIntake.map`` over ``bodies``, and how many events it produced."""
    started = time.perf_counter()
    events = 0
    for body in bodies:
        events += len(intake.map(body, PayloadFormat.PROTOBUF).events)
    return len(bodies) * SPANS_PER_REQUEST / (time.perf_counter() - started), events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    committer = GroupCommitter(_no_database)
    intake = TraceIntake(committer)
    ceilings: list[float] = []
    rates: list[float] = []
    try:
        for round_number, bodies in request_rounds(args.rounds, args.requests):
            # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
            if round_number % 2:
                rate, events = intake_map(intake, bodies)
                ceilings.append(ceiling(bodies))
            else:
                ceilings.append(ceiling(bodies))
                rate, events = intake_map(intake, bodies)
            rates.append(rate)
            print(
                f"round {round_number + 1}: ceiling {ceilings[-1]:,.0f} spans/s, "
                f"TraceIntake.map {rates[-1]:,.0f} spans/s ({events} events), "
                f"ratio {rates[-1] / ceilings[-1]:.2f}",
                flush=True,
            )
    finally:
        committer.close(5)
    spans = args.rounds * args.requests * SPANS_PER_REQUEST
    print(f"requests: {args.rounds} rounds x {args.requests} x {SPANS_PER_REQUEST} spans = {spans} spans")
    print(f"ceiling (decode + walk attributes, Python), best round: {max(ceilings):,.0f} spans/s")
    print(f"TraceIntake.map (decode + map to events), best round: {max(rates):,.0f} spans/s")
    print(f"ratio: {max(rates) / max(ceilings):.2f}")


if __name__ == "__main__":
    main()
