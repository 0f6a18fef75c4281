"""What keeping the daily rollups costs ingest: ``update_rollups`` per batch, with and without them.

    .venv/bin/python benchmarks/rollup_maintenance.py                  # SQLite (a temporary file)
    .venv/bin/python benchmarks/rollup_maintenance.py --postgres postgresql://postgres@127.0.0.1:5432/test

Ingests ``--batches`` batches of ``--size`` events (200 customers, three models, a batch covering a
few minutes of one day, as live traffic does) through :func:`spanledger.billing.ingest.ingest` into a
fresh ledger twice: once with the daily maintenance switched off (what ``update_rollups`` cost before
the daily table) and once as shipped, timing every ``update_rollups`` call. Not a test: figures vary
by machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import text

import spanledger.billing.ingest as ingest_module
from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.migrate import upgrade
from spanledger.billing.rollups import maintenance
from spanledger.billing.usage_event import UsageEvent

DAY = datetime(2026, 11, 20, tzinfo=UTC)
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")]


def _batch(number: int, size: int) -> list[UsageEvent]:
    start = DAY + timedelta(minutes=3 * number)
    events = []
    for index in range(size):
        provider, model = MODELS[index % 3]
        events.append(
            UsageEvent(
                dedupe_key=f"b{number}-{index}",
                occurred_at=start + timedelta(milliseconds=180 * index),
                customer_external_id=f"customer-{(index * 7 + number) % 200:04d}",
                event_name="gen_ai.call",
                provider=provider,
                request_model=model,
                response_model=model,
                input_tokens=100 + index,
                output_tokens=20 + index % 50,
            )
        )
    return events


def _run(url: str, batches: int, size: int, daily: bool) -> list[float]:
    engine = create_engine_from_url(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    timings: list[float] = []
    original_update: Callable[..., None] = ingest_module.update_rollups
    original_add_days = maintenance.add_days

    def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        original_update(*args, **kwargs)
        timings.append((time.perf_counter() - started) * 1000)

    ingest_module.update_rollups = timed  # type: ignore[assignment]
    if not daily:
        maintenance.add_days = lambda connection, days: None  # type: ignore[assignment]
    try:
        with sessions() as session, session.begin():
            ingest_module.ingest(session, _batch(10_000, 400))  # customers exist before timing starts
        timings.clear()
        for number in range(batches):
            with sessions() as session, session.begin():
                ingest_module.ingest(session, _batch(number, size))
    finally:
        ingest_module.update_rollups = original_update
        maintenance.add_days = original_add_days
        engine.dispose()
    return timings


def _fresh(args: argparse.Namespace) -> tuple[str, Callable[[], None]]:
    if not args.postgres:
        folder = tempfile.mkdtemp(prefix="spanledger-rollups-")
        return f"sqlite:///{folder}/ledger.db", lambda: shutil.rmtree(folder, ignore_errors=True)
    schema = f"bench_rollups_{uuid.uuid4().hex[:8]}"
    admin = create_engine_from_url(args.postgres)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh schema per run, dropped after")
    args = parser.parse_args()
    for label, daily in (("hourly only (before)", False), ("hourly + daily (now)", True)):
        url, drop = _fresh(args)
        try:
            times = _run(url, args.batches, args.size, daily)
        finally:
            drop()
        ordered = sorted(times)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        print(
            f"{label:<22} update_rollups per batch of {args.size:,}: p50 {statistics.median(ordered):6.1f} ms"
            f"  p95 {p95:6.1f} ms  total {sum(times) / 1000:5.2f} s over {len(times)} batches"
        )


if __name__ == "__main__":
    main()
