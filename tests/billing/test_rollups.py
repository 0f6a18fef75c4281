"""Hourly rollups: the pure cell core, maintenance in ingest (merges, late events, re-pricing), the
migration's backfill, and which meters are answered from rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.ingest import ingest
from spanledger.billing.invoices.selection import meter_totals
from spanledger.billing.meters import MeterDefinition, meter_usage
from spanledger.billing.migrate import upgrade
from spanledger.billing.models import Customer, EventRecord, UsageRollup
from spanledger.billing.rollups import (
    CellMeasures,
    answerable,
    fold_events,
    hour_of,
    rebuild_rollups,
    refresh_rollups,
    split_window,
)
from spanledger.billing.rollups.cells import cell_from_row
from spanledger.billing.rollups.maintenance import _EVENT_COLUMNS
from spanledger.billing.usage_event import TOKEN_FIELDS, UNATTRIBUTED_CUSTOMER, UsageEvent

T0 = datetime(2026, 11, 3, 10, tzinfo=UTC)
M10 = timedelta(minutes=10)
H1M5 = timedelta(hours=1, minutes=5)


def call(key: str, customer: str | None = "acme", at: datetime = T0, **values) -> UsageEvent:
    values.setdefault("provider", "openai")
    values.setdefault("request_model", "gpt-4o")
    return UsageEvent(dedupe_key=key, occurred_at=at, customer_external_id=customer, **values)


def stored_cells(session) -> dict:
    return dict(cell_from_row(row) for row in session.execute(select(UsageRollup.__table__)).mappings())


def event_cells(session) -> dict:
    return fold_events(session.execute(select(*_EVENT_COLUMNS)).mappings())


def cells_by_customer(session) -> dict[str, int]:
    rows = session.execute(
        select(Customer.external_id, UsageRollup.event_count).join(
            Customer, Customer.id == UsageRollup.customer_id
        )
    )
    totals: dict[str, int] = {}
    for external_id, count in rows:
        totals[external_id] = totals.get(external_id, 0) + count
    return totals


# -- the pure core ---------------------------------------------------------------------------------


def _event(sequence: int, minute: int, **values) -> dict:
    base = dict.fromkeys(
        ["operation", "response_model", *TOKEN_FIELDS, "upstream_cost"],
    )
    base.update(
        sequence=sequence, customer_id=1, occurred_at=T0 + timedelta(minutes=minute),
        event_name="gen_ai.call", provider="openai", request_model="gpt-4o",
    )  # fmt: skip
    return {**base, **values}


def test_folding_in_parts_equals_folding_at_once():
    events = [
        _event(1, 5, input_tokens=100, output_tokens=7, upstream_cost=Decimal("0.25")),
        _event(2, 50, input_tokens=3),
        _event(3, 59, output_tokens=9, upstream_cost=Decimal("0.000000000001")),
        _event(4, 61, input_tokens=1),  # the next hour
        _event(5, 10, provider="anthropic", input_tokens=4),  # another cell of the same hour
    ]
    whole = fold_events(events)
    parts = fold_events(events[:2])
    for key, measures in fold_events(events[2:]).items():
        parts.setdefault(key, CellMeasures()).merge(measures)
    assert parts == whole
    (first,) = [m for k, m in whole.items() if k.hour == T0 and k.provider == "openai"]
    assert (first.event_count, first.unknown_cost_events, first.max_sequence) == (3, 1, 3)
    tokens = first.fields["total_tokens"]
    assert (tokens.total, tokens.count, tokens.minimum, tokens.maximum) == (119, 3, 3, 107)
    cost = first.fields["upstream_cost"]
    assert (cost.total, cost.count) == (Decimal("0.250000000001"), 2)
    assert first.fields["reasoning_tokens"].total is None and first.fields["reasoning_tokens"].count == 0


def test_hour_of_is_the_utc_hour():
    from zoneinfo import ZoneInfo

    local = datetime(2026, 11, 3, 11, 59, 59, 999999, tzinfo=ZoneInfo("Europe/Paris"))
    assert hour_of(local) == datetime(2026, 11, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "hours", "edges"),
    [
        (T0, T0 + timedelta(hours=3), (T0, T0 + timedelta(hours=3)), []),
        (
            T0 + timedelta(minutes=10),
            T0 + timedelta(hours=3, minutes=5),
            (T0 + timedelta(hours=1), T0 + timedelta(hours=3)),
            [
                (T0 + timedelta(minutes=10), T0 + timedelta(hours=1)),
                (T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=5)),
            ],
        ),
        (T0 + M10, T0 + timedelta(minutes=50), None, [(T0 + M10, T0 + timedelta(minutes=50))]),
        (T0 + M10, T0 + H1M5, None, [(T0 + M10, T0 + H1M5)]),
    ],
)  # fmt: skip
def test_split_window_into_whole_hours_and_ragged_edges(start, end, hours, edges):
    assert split_window(start, end) == (hours, edges)


@pytest.mark.parametrize(
    ("aggregation", "field", "filter_json", "group_by", "expected"),
    [
        ("count", None, None, None, True),
        ("sum", "upstream_cost", {"field": "model", "op": "like", "value": "gpt%"}, "customer", True),
        (
            "avg",
            "total_tokens",
            {"or": [{"field": "provider", "op": "in", "value": ["a", "b"]}]},
            "model",
            True,
        ),
        ("unique", "model", None, None, False),  # distinct values do not add up across hours
        ("sum", "metadata.seats", None, None, False),
        ("count", None, {"field": "metadata.feature", "op": "eq", "value": "x"}, None, False),
        ("count", None, {"field": "input_tokens", "op": "gt", "value": 5}, None, False),
        ("count", None, {"field": "response_id", "op": "eq", "value": "r"}, None, False),
        ("count", None, None, "metadata.feature", False),
        ("sum", "input_tokens", None, "output_tokens", False),
    ],
)
def test_which_meters_rollups_answer(aggregation, field, filter_json, group_by, expected):
    definition = MeterDefinition.parse("m", aggregation, field, filter=filter_json)
    assert answerable(definition, group_by) is expected


# -- maintenance in ingest ---------------------------------------------------------------------------


def test_ingest_keeps_the_cells_of_every_batch(session):
    with session.begin():
        ingest(
            session, [call("a", input_tokens=10), call("b", input_tokens=5, at=T0 + timedelta(minutes=30))]
        )
    with session.begin():
        ingest(session, [call("c", input_tokens=1, at=T0 + timedelta(minutes=59)), call("d", "globex")])
    assert stored_cells(session) == event_cells(session)
    (acme,) = [m for k, m in stored_cells(session).items() if k.hour == T0 and m.event_count == 3]
    assert acme.fields["input_tokens"].total == 16 and acme.max_sequence == 3


def test_a_late_event_lands_in_its_own_long_past_hour(session):
    with session.begin():
        ingest(session, [call("now", input_tokens=10)])
    late = T0 - timedelta(days=20, minutes=17)
    with session.begin():
        ingest(session, [call("late", input_tokens=7, at=late)])
    assert stored_cells(session) == event_cells(session)
    assert {k.hour for k in stored_cells(session)} == {T0, hour_of(late)}
    tokens = MeterDefinition.parse("t", "sum", "input_tokens")
    rows = meter_usage(session, tokens, start=late - timedelta(days=1), end=T0 + timedelta(days=1))
    assert [(r.customer, r.value) for r in rows] == [("acme", Decimal(17))]


def test_a_merge_that_fills_counts_and_model_moves_the_event_between_cells(session):
    with session.begin():
        ingest(session, [call("x", request_model=None, input_tokens=None, output_tokens=3)])
    with session.begin():
        result = ingest(session, [call("x", request_model="gpt-4o", input_tokens=40, output_tokens=99)])
    assert result.merged == 1
    assert stored_cells(session) == event_cells(session)
    (cell,) = stored_cells(session)
    assert cell.request_model == "gpt-4o"
    peak = MeterDefinition.parse("p", "max", "total_tokens")
    # Stored values win (output stays 3); the merge only filled the NULL input count.
    assert meter_usage(session, peak, start=T0, end=T0 + timedelta(hours=1), customer="acme")[0].value == 43


def test_a_merge_that_attributes_an_unattributed_event_moves_it_to_its_customer(session):
    with session.begin():
        ingest(session, [call("y", customer=None, input_tokens=5), call("z", customer=None, input_tokens=1)])
    assert cells_by_customer(session) == {UNATTRIBUTED_CUSTOMER: 2}
    session.rollback()
    with session.begin():
        ingest(session, [call("y", customer="acme", input_tokens=5)])
    assert stored_cells(session) == event_cells(session)
    assert cells_by_customer(session) == {UNATTRIBUTED_CUSTOMER: 1, "acme": 1}


def test_re_pricing_refreshes_the_cost_in_the_cells(session):
    with session.begin():
        ingest(session, [call("q", request_model="mystery-model", input_tokens=1000)])
    (cell,) = stored_cells(session).values()
    assert cell.unknown_cost_events == 1
    session.rollback()
    with session.begin():
        session.execute(
            update(EventRecord).values(upstream_cost=Decimal("0.5"), upstream_cost_currency="USD")
        )
        refresh_rollups(session.connection(), [1])
    (cell,) = stored_cells(session).values()
    assert (cell.unknown_cost_events, cell.fields["upstream_cost"].total) == (0, Decimal("0.5"))


def test_rebuild_recomputes_every_cell_from_the_events(session):
    with session.begin():
        ingest(session, [call(str(i), at=T0 + timedelta(minutes=7 * i), input_tokens=i) for i in range(30)])
        session.execute(update(UsageRollup).values(event_count=999))
        assert rebuild_rollups(session.connection()) == len(event_cells(session))
    assert stored_cells(session) == event_cells(session)


# -- invoice selections ------------------------------------------------------------------------------


def test_events_committed_after_the_runs_bound_are_never_counted(session):
    tokens = MeterDefinition.parse("t", "sum", "input_tokens")
    with session.begin():
        ingest(session, [call("a", input_tokens=10, at=T0 + timedelta(minutes=5))])
    head = session.scalar(select(EventRecord.sequence))
    customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "acme"))
    session.rollback()
    with session.begin():
        ingest(session, [call("b", input_tokens=7, at=T0 + timedelta(minutes=6))])  # same cell
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=1)
    bounded = meter_totals(session, tokens, customer_id=customer_id, start=start, end=end, max_sequence=head)
    assert (bounded.value, bounded.event_count, bounded.max_sequence) == (10, 1, head)
    everything = meter_totals(session, tokens, customer_id=customer_id, start=start, end=end)
    assert (everything.value, everything.event_count) == (17, 2)


# -- the migration backfills an existing ledger --------------------------------------------------------


def test_the_migration_backfills_rollups_of_an_existing_ledger(database_url):
    engine = create_engine_from_url(database_url)
    try:
        upgrade(engine, "0900_stripe")
        with engine.begin() as connection:
            customer_id = connection.execute(
                insert(Customer)
                .values(external_id="acme", currency="USD", created_at=T0)
                .returning(Customer.id)
            ).scalar_one()
            connection.execute(
                insert(EventRecord),
                [
                    {
                        "dedupe_key": f"k{i}", "event_name": "gen_ai.call", "customer_id": customer_id,
                        "occurred_at": T0 + timedelta(minutes=25 * i), "received_at": T0,
                        "provider": "openai", "input_tokens": 100 + i, "upstream_cost": Decimal("0.001"),
                        "metadata": {},
                    }
                    for i in range(10)
                ],
            )  # fmt: skip
        upgrade(engine)
        with engine.connect() as connection:
            stored = dict(
                cell_from_row(r) for r in connection.execute(select(UsageRollup.__table__)).mappings()
            )
            expected = fold_events(connection.execute(select(*_EVENT_COLUMNS)).mappings())
        assert stored == expected
        assert sum(m.event_count for m in stored.values()) == 10
    finally:
        engine.dispose()
