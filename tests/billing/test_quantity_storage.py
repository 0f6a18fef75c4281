"""Invoice-line quantities have no 9.2M-unit bound on SQLite (stored as exact text there)."""

from decimal import Decimal

from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.models import ExactDecimal, InvoiceLineRecord


def test_a_month_of_tokens_round_trips_exactly(database_url):
    engine = create_engine_from_url(database_url)
    table = Table(
        "quantities",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("q", ExactDecimal(12, "text")),
    )
    table.create(engine)
    values = [Decimal("2500000000"), Decimal("123456789.123456789012"), Decimal(0)]
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": i, "q": v} for i, v in enumerate(values)])
    with engine.connect() as connection:
        assert [row.q for row in connection.execute(select(table).order_by(table.c.id))] == values
    engine.dispose()


def test_invoice_line_quantity_uses_the_unbounded_storage():
    column_type = InvoiceLineRecord.__table__.c.quantity.type
    assert isinstance(column_type, ExactDecimal) and column_type.sqlite_storage == "text"


def test_the_migration_converts_stored_sqlite_quantities(tmp_path):
    from sqlalchemy import text

    from spanledger.billing.migrate import upgrade

    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0901_usage_rollups")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customers (id, external_id, currency, created_at)"
                " VALUES (1, 'acme', 'USD', '2026-11-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO invoices (id, customer_id, period, period_start, period_end, currency, status,"
                " subtotal, total, unknown_cost_events, created_at, updated_at)"
                " VALUES (1, 1, '2026-11', '2026-11-01',"
                " '2026-12-01', 'USD', 'draft', 0, 0, 0, '2026-11-01', '2026-11-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO invoice_lines (id, invoice_id, position, kind, description, quantity,"
                " exact_amount, amount, details) VALUES (1, 1, 1, 'usage', 'tokens', :q, 0, 0, '{}')"
            ),
            {"q": 1_184_567 * 10**12},
        )
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(select(InvoiceLineRecord.quantity)).scalar_one() == Decimal(1_184_567)
    engine.dispose()
