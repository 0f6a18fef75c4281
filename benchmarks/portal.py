"""Portal and admin page latency with a million events in the ledger.

    .venv/bin/python benchmarks/portal.py                                   # SQLite (a temporary file)
    .venv/bin/python benchmarks/portal.py --postgres postgresql://postgres@127.0.0.1:5432/test

Events are generated straight into ``usage_events`` (bulk insert; ``COPY`` on PostgreSQL), then the
hourly and daily rollups are rebuilt, October is invoiced and finalized for every customer, November
is invoiced as drafts (so the admin view splits both stored and draft lines), and the pages are requested in
process through the real Starlette routes (``TestClient``), "now" being 2026-11-20. The margin report
(``spanledger margins``) is timed too.
Customers are skewed: one "whale" has 10 % of all events, the rest share the remainder. Reported:
p50/p95 per page over ``--rounds`` requests. Not a test: figures vary by machine. Target: every page
well under a second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from sqlalchemy import insert, inspect, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.customers import create_customer
from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.invoices import finalize, list_invoices, run_invoices
from spanledger.billing.margin_report import margin_report
from spanledger.billing.migrate import upgrade
from spanledger.billing.models import Customer, EventRecord
from spanledger.billing.portal import portal_routes, portal_url, require_secret_key
from spanledger.billing.subscriptions.service import subscribe

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SECRET = "benchmark-secret-key-0123456789"
ADMIN = "benchmark-admin-token"
MODELS = [("openai", "gpt-4o", Decimal("2.5"), Decimal("10")), ("openai", "gpt-4o-mini", Decimal("0.15"),
          Decimal("0.6")), ("anthropic", "claude-sonnet-4-5", Decimal("3"), Decimal("15"))]  # fmt: skip
CATALOG = {
    "meters": [
        {"name": "tokens", "aggregation": "sum", "field": "total_tokens"},
        {"name": "requests", "aggregation": "count"},
    ],
    "plans": [
        # Priced per request: a month of the whale's tokens would overflow SQLite's exact decimals.
        {"code": "pro", "name": "Pro", "base_fee": 49, "prices": [
            {"meter": "requests", "model": "per_unit", "unit_price": 0.004, "included_units": 1000},
        ]},
    ],
}  # fmt: skip


def _setup(url: str, customers: int) -> list[int]:
    engine = create_engine_from_url(url)
    upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        apply_catalog(session, parse_catalog(CATALOG))
        for index in range(customers):
            name = "whale" if index == 0 else f"customer-{index:04d}"
            create_customer(session, name, name=name.title())
            subscribe(session, name, "pro", start=OCT)
        ids = [c.id for c in session.query(Customer).order_by(Customer.id)]
    engine.dispose()
    return ids


def _rows(count: int, customer_ids: list[int], seed: int = 7):
    rng = random.Random(seed)
    span = int((NOW - OCT).total_seconds())
    whale, others = customer_ids[0], customer_ids[1:]
    for index in range(count):
        customer = whale if rng.random() < 0.10 else rng.choice(others)
        provider, model, input_price, output_price = rng.choice(MODELS)
        occurred = OCT + timedelta(seconds=rng.randrange(span))
        input_tokens, output_tokens = rng.randint(50, 4000), rng.randint(10, 1500)
        cost = (input_price * input_tokens + output_price * output_tokens) / 1_000_000
        yield {
            "dedupe_key": f"bench-{index}", "event_name": "gen_ai.call", "customer_id": customer,
            "occurred_at": occurred, "received_at": occurred, "provider": provider, "request_model": model,
            "response_model": model, "input_tokens": input_tokens, "output_tokens": output_tokens,
            "upstream_cost": cost.quantize(Decimal("1e-12")), "upstream_cost_currency": "USD",
            "event_metadata": {},
        }  # fmt: skip


_COPY_COLUMNS = ("dedupe_key", "event_name", "customer_id", "occurred_at", "received_at", "provider",
                 "request_model", "response_model", "input_tokens", "output_tokens", "upstream_cost",
                 "upstream_cost_currency", "metadata")  # fmt: skip


def _load_events(url: str, count: int, customer_ids: list[int]) -> None:
    engine = create_engine_from_url(url)
    rows = _rows(count, customer_ids)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            cursor = connection.connection.cursor()
            with cursor.copy(f"COPY usage_events ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([*(row[c] for c in _COPY_COLUMNS[:-1]), "{}"])
    else:
        table = EventRecord.__table__
        batch: list[dict] = []
        with engine.begin() as connection:
            for row in rows:
                batch.append(row)
                if len(batch) == 20_000:
                    connection.execute(insert(table), batch)
                    batch = []
            if batch:
                connection.execute(insert(table), batch)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def _rebuild_rollups(url: str) -> None:
    try:
        from spanledger.billing.rollups import rebuild_rollups
    except ImportError:  # before the rollups existed
        return
    engine = create_engine_from_url(url)
    with engine.begin() as connection:
        rebuild_rollups(connection)
    with engine.begin() as connection:
        # The rollups were written after the ANALYZE of the load: plan the reports with their real sizes.
        tables = [t for t in ("usage_rollups", "usage_rollups_daily") if inspect(connection).has_table(t)]
        for table in tables:
            connection.execute(text(f"ANALYZE {table}"))
        sizes = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
    print("rollup cells: " + ", ".join(f"{table} {size:,}" for table, size in sizes.items()))
    engine.dispose()


def _invoice_october(url: str, drafts: bool) -> None:
    engine = create_engine_from_url(url)
    sessions = make_session_factory(engine)
    run_invoices(sessions, "2026-10")
    with sessions() as session, session.begin():
        for invoice, _customer in list_invoices(session, period="2026-10", status="draft"):
            finalize(session, invoice.id)
    if drafts:
        run_invoices(sessions, "2026-11")
    engine.dispose()


def _timed(client: TestClient, path: str, rounds: int, headers: dict | None = None) -> list[float]:
    client.get(path, headers=headers)  # warm caches once
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def _report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{name:<40} p50 {statistics.median(ordered):8.1f} ms   p95 {p95:8.1f} ms   (n={len(ordered)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-drafts", action="store_true", help="leave November uninvoiced")
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh schema is created and dropped")
    parser.add_argument("--keep", action="store_true", help="keep the ledger, print its URL")
    parser.add_argument("--ledger", help="measure the ledger --keep printed")
    args = parser.parse_args()
    if args.ledger:
        _measure(args.ledger, args.rounds)
        return

    schema = None
    if args.postgres:
        schema = f"bench_portal_{uuid.uuid4().hex[:8]}"
        admin = create_engine_from_url(args.postgres)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='spanledger-portal-')}/ledger.db"
    try:
        started = time.perf_counter()
        ids = _setup(url, args.customers)
        _load_events(url, args.events, ids)
        loaded = time.perf_counter()
        _rebuild_rollups(url)
        rolled = time.perf_counter()
        _invoice_october(url, not args.no_drafts)
        invoiced = time.perf_counter()
        print(f"{args.events:,} events, {args.customers} customers on {url.split(':')[0]}: loaded in "
              f"{loaded - started:.0f} s, rollups rebuilt in {rolled - loaded:.0f} s, October invoiced and "
              f"finalized, November drafted in {invoiced - rolled:.0f} s")  # fmt: skip
        _measure(url, args.rounds)
        if args.keep:
            print(f"ledger kept: {url}")
    finally:
        if schema is not None and not args.keep:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _measure(url: str, rounds: int) -> None:
    engine = create_engine_from_url(url)
    sessions = make_session_factory(engine)
    routes = portal_routes(sessions, secret_key=SECRET, admin_token=ADMIN, clock=lambda: NOW)
    key = require_secret_key(SECRET)
    with TestClient(Starlette(routes=routes)) as client:
        whale = portal_url("", key, "whale", NOW + timedelta(days=1))
        typical = portal_url("", key, "customer-0042", NOW + timedelta(days=1))
        drill = whale.replace("/portal?", "/portal/requests?") + "&invoice=current&line=2"
        with sessions() as session:
            whale_events = session.execute(text(
                "SELECT count(*) FROM usage_events e JOIN customers c ON c.id = e.customer_id "
                "WHERE c.external_id = 'whale'")).scalar_one()  # fmt: skip
        print(f"whale: {whale_events:,} events in the ledger")
        _report("customer page (typical customer)", _timed(client, typical, rounds))
        _report("customer page (whale)", _timed(client, whale, rounds))
        _report("drill-down, first page (whale)", _timed(client, drill + "&page=1", rounds))
        _report("drill-down, page 200 (whale)", _timed(client, drill + "&page=200", rounds))
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        _report("admin Cost Insights (Oct 1 to now)", _timed(client, "/admin", rounds, bearer))
    for by in ("customer", "model", "day"):
        _report(f"margin report by {by} (Oct 1 to now)", _timed_call(sessions, by, max(3, rounds // 3)))
    engine.dispose()


def _timed_call(sessions, by: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds + 1):
        with sessions() as session:
            start = time.perf_counter()
            margin_report(session, by, start=OCT, end=NOW)
            times.append((time.perf_counter() - start) * 1000)
    return times[1:]  # the first warms caches


if __name__ == "__main__":
    main()
