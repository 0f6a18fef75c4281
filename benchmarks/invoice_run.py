"""Invoice run for 1,000 customers with 1M and with 10M events in the ledger: do rollups make it flat?

    .venv/bin/python benchmarks/invoice_run.py                          # SQLite, 1M then 10M events
    .venv/bin/python benchmarks/invoice_run.py --events 100000,1000000  # smaller sizes
    .venv/bin/python benchmarks/invoice_run.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/invoice_run.py --compare-scan           # also time the old event scan

For each size a fresh ledger is migrated (SQLite: a temporary file; PostgreSQL: a schema of its own,
dropped afterwards) and filled *directly* — not through ``ingest``, which would take hours at 10M:

- events are bulk-inserted (SQLite ``executemany``, PostgreSQL ``COPY``), every value encoded by
  its column's own SQLAlchemy type, spread uniformly over November 2026 across the customers, three
  models, with a synthetic per-token upstream cost;
- their rollups are then built by one ``INSERT … SELECT … GROUP BY`` (:func:`rollups_sql`), the bulk
  equivalent of the product's pure core :func:`spanledger.billing.rollups.fold_events`; the cells of
  a few customers are checked against ``fold_events`` over their events before the run.

After the load the ledger's tables are analyzed (PostgreSQL: ``VACUUM (ANALYZE)`` of this ledger's
tables only, see :func:`settle`). Then ``run_invoices`` (the product's code, one transaction per
customer) writes the November drafts of every customer: a plan with a base fee, a ``sum(total_tokens)``
meter and a ``count`` meter. Every size stays loaded and ``--rounds`` timed runs interleave the sizes
(each deletes the previous drafts first), so a change of load on a shared machine hits all sizes alike.
Printed: load time, every round's run time, the best per size, and the ratio of the best of the largest
to the best of the smallest (target ≤ 1.2). Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, delete, func, select, text

from spanledger.billing.catalog import plan_from_json
from spanledger.billing.catalog.schema import plan_to_json
from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.invoices import run_invoices
from spanledger.billing.meters import MeterDefinition, create_meter
from spanledger.billing.migrate import upgrade
from spanledger.billing.models import (
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURED_FIELDS,
    Customer,
    EventRecord,
    InvoiceLineRecord,
    InvoiceLineWeight,
    InvoiceRecord,
    PlanRecord,
    SubscriptionPhase,
    SubscriptionRecord,
    UsageRollup,
)
from spanledger.billing.rollups import fold_events
from spanledger.billing.rollups.cells import cell_from_row
from spanledger.billing.rollups.maintenance import _EVENT_COLUMNS

NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOV_NAIVE = NOV.replace(tzinfo=None)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_SECONDS = 30 * 24 * 3600
FLUSH_ROWS = 50_000
#: (provider, response model, input price per token, output price per token) — synthetic.
MODELS = [
    ("openai", "gpt-4o", Decimal("0.0000025"), Decimal("0.00001")),
    ("anthropic", "claude-sonnet-4-5", Decimal("0.000003"), Decimal("0.000015")),
    ("gcp.gen_ai", "gemini-2.5-flash", Decimal("0.0000003"), Decimal("0.0000025")),
]
PLAN = {
    "code": "pro",
    "name": "Pro",
    "base_fee": "49",
    "prices": [
        {"meter": "tokens", "model": "per_unit", "unit_price": "0.002", "unit_size": 1000},
        {"meter": "calls", "model": "per_unit", "unit_price": "0.001", "unit_size": 1},
    ],
}
#: The tables the run reads (statistics and vacuum after the load).
LEDGER_TABLES = [
    "usage_events", "usage_rollups", "customers", "subscriptions", "subscription_phases", "plans", "meters",
]  # fmt: skip
EVENT_COLUMNS = [
    "sequence", "dedupe_key", "event_name", "customer_id", "occurred_at", "received_at", "provider",
    "operation", "request_model", "response_model", "input_tokens", "output_tokens", "upstream_cost",
    "upstream_cost_currency", "price_source", "metadata",
]  # fmt: skip


@contextmanager
def ledger(postgres: str | None, label: str) -> Iterator[str]:
    """A fresh database URL for one size (deleted or dropped afterwards)."""
    if postgres is None:
        with tempfile.TemporaryDirectory(prefix=f"invoice-run-{label}-") as directory:
            yield f"sqlite:///{os.path.join(directory, 'ledger.db')}"
        return
    base = postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(base)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def set_up_catalog(engine: Engine, customers: int) -> list[int]:
    """Meters, the plan, and ``customers`` customers subscribed since October; their ids."""
    with make_session_factory(engine)() as session, session.begin():
        create_meter(session, MeterDefinition.parse("tokens", "sum", "total_tokens"))
        create_meter(session, MeterDefinition.parse("calls", "count"))
        plan = plan_from_json(PLAN)
        record = PlanRecord(
            code=plan.code,
            name=plan.name,
            currency=plan.currency,
            definition=plan_to_json(plan),
            updated_at=OCT,
        )
        session.add(record)
        rows = [
            Customer(external_id=f"cust-{i:05d}", currency="USD", created_at=OCT) for i in range(customers)
        ]
        session.add_all(rows)
        session.flush()
        subscriptions = [
            SubscriptionRecord(customer_id=c.id, anchor=OCT, started_at=OCT, seats=0, created_at=OCT)
            for c in rows
        ]
        session.add_all(subscriptions)
        session.flush()
        session.add_all(
            SubscriptionPhase(subscription_id=s.id, plan_id=record.id, start=OCT, end=None)
            for s in subscriptions
        )
        return [c.id for c in rows]


class EventEncoder:
    """Event rows as DBAPI tuples, encoded the way the columns' types encode them — by hand, because
    at 10M events the generic type processors dominate the load (checked against them once)."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.scale = 10**12
        columns = EventRecord.__table__.c
        self.processors = [
            None if name == "metadata" else columns[name].type._cached_bind_processor(engine.dialect)
            for name in EVENT_COLUMNS
        ]
        self.checked = False

    def moment(self, offset: int) -> Any:
        if self.sqlite:  # SQLAlchemy's SQLite DATETIME text form, naive UTC
            return f"{(NOV_NAIVE + timedelta(seconds=offset)).isoformat(sep=' ')}.000000"
        return NOV + timedelta(seconds=offset)

    def cost(self, input_tokens: int, output_tokens: int, input_price: Decimal, output_price: Decimal) -> Any:
        exact = input_tokens * input_price + output_tokens * output_price
        return int(exact * self.scale) if self.sqlite else exact

    def check(self, row: tuple[Any, ...], plain: dict[str, Any]) -> None:
        if self.checked:
            return
        expected = tuple(
            plain[name] if p is None else p(plain[name])
            for p, name in zip(self.processors, EVENT_COLUMNS, strict=True)
        )
        if row != expected:
            raise SystemExit(f"hand-encoded row {row} differs from the column types' encoding {expected}")
        self.checked = True


def _events_of(
    encoder: EventEncoder, customer_id: int, count: int, first_sequence: int, rng: random.Random
) -> list[tuple[Any, ...]]:
    rows = []
    offsets = sorted(rng.randrange(MONTH_SECONDS) for _ in range(count))
    for index, offset in enumerate(offsets):
        provider, model, input_price, output_price = MODELS[rng.randrange(len(MODELS))]
        # Small calls: on SQLite an exact decimal (an invoice line quantity) stays below ~9.2M units.
        input_tokens, output_tokens = rng.randrange(50, 700), rng.randrange(10, 150)
        moment = encoder.moment(offset)
        sequence = first_sequence + index
        row = (
            sequence, f"bench-{sequence:012d}", "gen_ai.call", customer_id, moment, moment, provider, "chat",
            model, model, input_tokens, output_tokens,
            encoder.cost(input_tokens, output_tokens, input_price, output_price), "USD", "benchmark", "{}",
        )  # fmt: skip
        if not encoder.checked:
            occurred = NOV + timedelta(seconds=offset)
            values = dict(zip(EVENT_COLUMNS, row, strict=True))
            values.update(
                occurred_at=occurred,
                received_at=occurred,
                upstream_cost=input_tokens * input_price + output_tokens * output_price,
            )
            encoder.check(row, values)
        rows.append(row)
    return rows


class BulkWriter:
    """Encoded rows (see :class:`EventEncoder`) straight into a table through the DBAPI."""

    def __init__(self, engine: Engine, table: Any, columns: list[str]) -> None:
        self.engine, self.table, self.columns = engine, table, columns
        self.postgres = engine.dialect.name == "postgresql"

    def write_encoded(self, values: list[tuple[Any, ...]]) -> None:
        if not values:
            return
        names = ", ".join(f'"{c}"' for c in self.columns)
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.postgres:
                with cursor.copy(f"COPY {self.table.name} ({names}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in self.columns)
                # A bulk load, not the product: a big page cache (the indexes outgrow the default 2 MB,
                # and random inserts then read and write pages from disk) and no fsync per commit.
                cursor.execute("PRAGMA cache_size=-2000000")
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.execute("BEGIN")
                cursor.executemany(f"INSERT INTO {self.table.name} ({names}) VALUES ({marks})", values)
                cursor.execute("COMMIT")
            raw.commit()
        finally:
            raw.close()


def load(engine: Engine, customer_ids: list[int], events: int, seed: int = 8) -> int:
    """Insert ``events`` events, then their rollups; return the number of rollup rows."""
    rng = random.Random(seed)
    event_writer = BulkWriter(engine, EventRecord.__table__, EVENT_COLUMNS)
    encoder = EventEncoder(engine)
    per_customer, extra = divmod(events, len(customer_ids))
    sequence = 1
    event_rows: list[tuple[Any, ...]] = []
    for position, customer_id in enumerate(customer_ids):
        count = per_customer + (1 if position < extra else 0)
        event_rows += _events_of(encoder, customer_id, count, sequence, rng)
        sequence += count
        if len(event_rows) >= FLUSH_ROWS:
            event_writer.write_encoded(event_rows)
            event_rows = []
    event_writer.write_encoded(event_rows)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('usage_events', 'sequence'), :n)"),
                {"n": sequence - 1},
            )
        cells = connection.execute(text(rollups_sql(engine.dialect.name))).rowcount
    settle(engine)
    check_rollups(engine, customer_ids[:3])
    return cells


def settle(engine: Engine) -> None:
    """Statistics (and on PostgreSQL a vacuum) of the freshly loaded tables, as a ledger in service has.

    On PostgreSQL only this ledger's tables: a bare ``ANALYZE`` would analyze every schema of the
    database, other benchmarks' ledgers included. ``VACUUM`` sets the visibility map and hint bits that
    autovacuum would have set long ago in service (it may be off on a benchmark server), so the first
    timed run does not pay for them in proportion to the rows just loaded.
    """
    if engine.dialect.name != "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(LEDGER_TABLES)}")


def rollups_sql(dialect: str) -> str:
    """The bulk equivalent of folding every event into cells: one ``INSERT … SELECT … GROUP BY``.

    Same cells as :func:`spanledger.billing.rollups.fold_events` (checked by :func:`check_rollups`).
    On SQLite, exact decimals are stored as scaled integers, so their SQL sums are already encoded.
    """
    if dialect == "postgresql":
        hour = "date_trunc('hour', occurred_at)"
    else:  # the text form SQLAlchemy stores UTC datetimes in
        hour = "strftime('%Y-%m-%d %H:00:00.000000', occurred_at)"
    dimensions = ", ".join(ROLLUP_DIMENSIONS)
    columns = [
        "customer_id",
        "hour",
        *ROLLUP_DIMENSIONS,
        "event_count",
        "unknown_cost_events",
        "max_sequence",
    ]
    values = ["customer_id", hour, dimensions, "count(*)", "count(*) - count(upstream_cost)", "max(sequence)"]
    for name in ROLLUP_MEASURED_FIELDS:
        expression = (
            "CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL "
            "ELSE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END"
            if name == "total_tokens"
            else name
        )
        columns += [f"{name}_sum", f"{name}_count", f"{name}_min", f"{name}_max"]
        values += [f"sum({expression})", f"count({expression})", f"min({expression})", f"max({expression})"]
    return (
        f"INSERT INTO usage_rollups ({', '.join(columns)}) SELECT {', '.join(values)} FROM usage_events "
        f"GROUP BY customer_id, {hour}, {dimensions}"
    )


def check_rollups(engine: Engine, customer_ids: list[int]) -> None:
    """The bulk cells of a few customers equal what the product's pure core folds from their events."""
    with engine.connect() as connection:
        for customer_id in customer_ids:
            events = connection.execute(select(*_EVENT_COLUMNS).where(EventRecord.customer_id == customer_id))
            expected = fold_events(events.mappings())
            rows = connection.execute(
                select(UsageRollup.__table__).where(UsageRollup.customer_id == customer_id)
            )
            stored = dict(cell_from_row(row) for row in rows.mappings())
            if stored != expected:
                raise SystemExit(f"bulk rollups of customer {customer_id} differ from fold_events")


def time_run(engine: Engine, customers: int) -> float:
    """Seconds of one run writing the November drafts of every customer (the previous round's drafts,
    if any, deleted first, so every round writes fresh drafts as the first one did)."""
    with engine.begin() as connection:
        connection.execute(delete(InvoiceLineWeight.__table__))
        connection.execute(delete(InvoiceLineRecord.__table__))
        connection.execute(delete(InvoiceRecord.__table__))
    started = time.perf_counter()
    summary = run_invoices(make_session_factory(engine), "2026-11")
    elapsed = time.perf_counter() - started
    if summary.created + summary.updated != customers:
        raise SystemExit(
            f"expected {customers} drafts, got {summary.created + summary.updated}: {summary.skipped}"
        )
    return elapsed


@contextmanager
def event_scans_only() -> Iterator[None]:
    """The pre-rollup behaviour: every meter question scans the events."""
    import spanledger.billing.rollups.queries as queries

    original = queries.answerable
    queries.answerable = lambda definition, group_by=None: False
    try:
        yield
    finally:
        queries.answerable = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="1000000,10000000", help="comma-separated ledger sizes")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per size, interleaved; best kept")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database (a fresh schema)")
    parser.add_argument("--compare-scan", action="store_true", help="also time the run with event scans only")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.events.split(",")]
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"invoice run, {args.customers} customers, {backend}; events spread over November 2026")
    runs: dict[int, list[float]] = {size: [] for size in sizes}
    with ExitStack() as stack:
        engines: dict[int, Engine] = {}
        for size in sizes:
            engine = create_engine_from_url(stack.enter_context(ledger(args.postgres, str(size))))
            stack.callback(engine.dispose)
            upgrade(engine)
            ids = set_up_catalog(engine, args.customers)
            started = time.perf_counter()
            cells = load(engine, ids, size)
            loaded = time.perf_counter() - started
            with engine.connect() as connection:
                stored = connection.scalar(select(func.count()).select_from(EventRecord.__table__))
            print(f"{size:>11,} events ({stored:,} stored, {cells:,} rollup rows), loaded in {loaded:.0f} s")
            engines[size] = engine
        # Rounds interleave the sizes, so a change of load on the shared machine hits every size alike.
        for round_number in range(args.rounds):
            for size, engine in engines.items():
                runs[size].append(time_run(engine, args.customers))
                # The machine is shared: the load average says how much to trust the time.
                print(
                    f"  round {round_number + 1}, {size:>11,} events: invoice run {runs[size][-1]:.2f} s "
                    f"(load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})",
                    flush=True,
                )
        if args.compare_scan:
            for size, engine in engines.items():
                with event_scans_only():
                    print(
                        f"{size:>11,} events: with event scans only {time_run(engine, args.customers):.2f} s"
                    )
    best = {size: min(times) for size, times in runs.items()}
    for size, times in runs.items():
        print(
            f"{size:>11,} events: invoice run best {best[size]:.2f} s "
            f"(rounds: {', '.join(f'{t:.2f}' for t in times)})"
        )
    if len(best) > 1:
        smallest, largest = min(best), max(best)
        ratio = best[largest] / best[smallest]
        print(f"ratio {largest:,} / {smallest:,} events (best runs): {ratio:.2f} (target <= 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
