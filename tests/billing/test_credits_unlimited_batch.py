"""Unlimited packs at ingest: one query per batch for every account of the batch, through the partial
index of unlimited grants, and each (customer, meter) covered only inside its own pack's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import event, select, text

from spanledger.billing.credits import CreditPack
from spanledger.billing.credits.service import balance, purchase_pack
from spanledger.billing.customers import create_customer
from spanledger.billing.ingest import ingest
from spanledger.billing.meters import MeterDefinition, create_meter
from spanledger.billing.models import CreditEntryRecord, CreditMeter, Customer, Meter
from spanledger.billing.models.credit_entry import UNLIMITED_CONDITION
from spanledger.billing.usage_event import UsageEvent

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def _call(key: str, customer: str, at: datetime, tokens: int = 10_000) -> UsageEvent:
    return UsageEvent(
        key, at, customer, provider="openai", response_model="gpt-4o", input_tokens=tokens, output_tokens=0
    )


def _calls(prefix: str, count: int, start: datetime) -> list[UsageEvent]:
    """``count`` calls, one a minute from ``start``, alternately beta's and acme's."""
    customers = ["beta", "acme"]
    return [_call(f"{prefix}-{i}", customers[i % 2], start + timedelta(minutes=i)) for i in range(count)]


@pytest.fixture
def two_accounts(session) -> None:
    """acme: unlimited on tokens for November; beta: unlimited on calls for November."""
    with session.begin():
        tokens = create_meter(session, MeterDefinition.parse("tokens", "sum", "total_tokens"))
        calls = create_meter(session, MeterDefinition.parse("calls", "count"))
        session.add_all(
            [
                CreditMeter(meter_id=tokens.id, units_per_credit=D(1000)),
                CreditMeter(meter_id=calls.id, units_per_credit=D(1)),
            ]
        )
        create_customer(session, "acme")
        create_customer(session, "beta")
        session.flush()
        tokens_pack = CreditPack("ent-t", "Tokens", "tokens", None, D(999), valid_days=30)
        calls_pack = CreditPack("ent-c", "Calls", "calls", None, D(99), valid_days=30)
        purchase_pack(session, "acme", tokens_pack, at=NOV)
        purchase_pack(session, "beta", calls_pack, at=NOV)


def _consumption(session) -> dict[tuple[str, str, str], D]:
    """(customer, meter, event reason) → the consumption entry's amount."""
    rows = session.execute(
        select(Customer.external_id, Meter.name, CreditEntryRecord.reason, CreditEntryRecord.amount)
        .join(Customer, Customer.id == CreditEntryRecord.customer_id)
        .join(Meter, Meter.id == CreditEntryRecord.meter_id)
        .where(CreditEntryRecord.kind == "consumption")
    )
    return {(customer, meter, reason): amount for customer, meter, reason, amount in rows}


def test_each_account_is_covered_only_by_its_own_unlimited_pack_inside_its_window(session, two_accounts):
    with session.begin():
        ingest(
            session,
            [
                _call("acme-before", "acme", NOV - timedelta(hours=1)),
                _call("acme-in", "acme", NOV + timedelta(days=9)),
                _call("acme-last-moment", "acme", DEC - timedelta(microseconds=1)),
                _call("acme-after", "acme", DEC),  # the pack expires at Dec 1 (exclusive)
                _call("beta-in", "beta", NOV + timedelta(days=9)),
            ],
        )
    with session.begin():
        amounts = _consumption(session)
        by_event = {(c, m, int(reason.split()[1])): a for (c, m, reason), a in amounts.items()}
    # Events are numbered in batch order: 1 before, 2 in, 3 last moment, 4 after, 5 beta.
    assert sorted(by_event.items()) == sorted(
        {
            ("acme", "tokens", 1): D(-10), ("acme", "tokens", 2): D(0), ("acme", "tokens", 3): D(0),
            ("acme", "tokens", 4): D(-10),
            # acme has no unlimited pack on calls, beta none on tokens.
            ("acme", "calls", 1): D(-1), ("acme", "calls", 2): D(-1), ("acme", "calls", 3): D(-1),
            ("acme", "calls", 4): D(-1),
            ("beta", "tokens", 5): D(-10), ("beta", "calls", 5): D(0),
        }.items()
    )  # fmt: skip
    with session.begin():
        assert balance(session, "acme", "tokens", at=NOV + timedelta(days=1)).unlimited
        assert not balance(session, "acme", "tokens", at=DEC).unlimited
        assert not balance(session, "acme", "calls", at=NOV + timedelta(days=1)).unlimited
        assert balance(session, "beta", "calls", at=NOV + timedelta(days=1)).unlimited


def test_a_batch_reads_the_unlimited_grants_once_however_long_the_ledger(session, engine, two_accounts):
    with session.begin():
        ingest(session, _calls("old", 200, NOV))
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "credit_entries" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session.begin():
            ingest(session, _calls("new", 20, NOV + timedelta(days=2)))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # Two customers × two credit meters, one read of their unlimited grants (no per-account scan).
    assert len(statements) == 1
    assert UNLIMITED_CONDITION in statements[0]


def test_the_unlimited_grants_query_uses_the_partial_index(session, backend):
    from spanledger.billing.credits.service import _UNLIMITED_GRANTS

    with session.begin():
        connection = session.connection()
        statement = _UNLIMITED_GRANTS.params(customer_ids=[1, 2], meter_ids=[1])
        sql = str(statement.compile(connection, compile_kwargs={"literal_binds": True}))
        if backend == "sqlite":
            plan = " ".join(row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        else:
            connection.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: ask what it can use
            plan = " ".join(connection.execute(text(f"EXPLAIN {sql}")).scalars())
    assert "ix_credit_entries_unlimited" in plan
