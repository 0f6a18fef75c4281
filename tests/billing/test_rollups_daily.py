"""Daily rollups are always the hourly rollups summed by UTC day.

Random ledgers spanning several UTC days (events near midnight, late events weeks old) are ingested
through :func:`spanledger.billing.ingest.ingest` in random batches — with duplicates, and second
records of a call that fill NULL counts, models, the provider or the customer (merges) — and some
events are re-priced in place (:func:`refresh_rollups`). After every step the daily table must equal
the hourly table folded by day, and the hourly table the events folded by hour. Each example runs in a
transaction that is rolled back.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update

from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord, UsageRollup, UsageRollupDaily
from spanledger.billing.rollups.cells import cell_from_row, fold_events
from spanledger.billing.rollups.days import DayMeasures, day_from_row, fold_cells
from spanledger.billing.rollups.maintenance import (
    _EVENT_COLUMNS,
    rebuild_days,
    rebuild_rollups,
    refresh_rollups,
)
from spanledger.billing.rollups.queries import split_days
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 2, 21, tzinfo=UTC)  # three hours before midnight
SPAN_MINUTES = 2 * 24 * 60
CUSTOMERS = ["acme", "acme", "globex", None]
PROVIDERS = ["openai", "anthropic", ""]
MODELS = ["gpt-4o", "mystery-1", None]
BLANKABLE = [
    "customer_external_id",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
]

maybe_tokens = st.one_of(st.none(), st.integers(0, 5_000))


@st.composite
def usage_events(draw: st.DrawFn, index: int) -> UsageEvent:
    input_tokens = draw(maybe_tokens)
    output_tokens = draw(maybe_tokens)
    if draw(st.integers(0, 9)) == 0:  # late: weeks before the rest
        occurred_at = T0 - timedelta(days=draw(st.integers(20, 40)), minutes=draw(st.integers(0, 1440)))
    else:
        occurred_at = T0 + timedelta(minutes=draw(st.integers(0, SPAN_MINUTES)))
    return UsageEvent(
        dedupe_key=f"call-{index}",
        occurred_at=occurred_at,
        customer_external_id=draw(st.sampled_from(CUSTOMERS)),
        event_name=draw(st.sampled_from(["gen_ai.call", "gen_ai.call", "tool.call"])),
        provider=draw(st.sampled_from(PROVIDERS)),
        operation=draw(st.sampled_from(["chat", None])),
        request_model=draw(st.sampled_from(MODELS)),
        response_model=draw(st.sampled_from(MODELS)),
        input_tokens=input_tokens,
        cache_read_input_tokens=draw(st.one_of(st.none(), st.integers(0, input_tokens)))
        if input_tokens
        else None,
        output_tokens=output_tokens,
    )


def _first_record(event: UsageEvent, blanks: list[str]) -> UsageEvent:
    changes = {name: None for name in blanks}
    if "customer_external_id" in blanks or "input_tokens" in blanks:
        changes["cache_read_input_tokens"] = None
    return dataclasses.replace(event, **changes)


@st.composite
def ledgers(draw: st.DrawFn) -> list[list[UsageEvent]]:
    events = [draw(usage_events(i)) for i in range(draw(st.integers(5, 40)))]
    records: list[UsageEvent] = []
    for event_ in events:
        if draw(st.booleans()):
            blanks = draw(st.lists(st.sampled_from(BLANKABLE), min_size=1, max_size=3, unique=True))
            records.append(_first_record(event_, blanks))
        records.append(event_)
        if draw(st.integers(0, 4)) == 0:
            records.append(event_)  # a duplicate (a retried export)
    order = draw(st.permutations(records))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=4, unique=True)))
    return [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]


def _stored_days(session) -> dict:
    return dict(day_from_row(row) for row in session.execute(select(UsageRollupDaily.__table__)).mappings())


def _hourly_by_day(session) -> dict:
    rows = session.execute(select(UsageRollup.__table__)).mappings()
    return fold_cells(cell_from_row(row) for row in rows)


def _hourly_from_events(session) -> dict:
    rows = session.execute(select(*_EVENT_COLUMNS).select_from(EventRecord.__table__)).mappings()
    return fold_events(rows)


def _assert_exact(session) -> None:
    stored_hours = dict(cell_from_row(r) for r in session.execute(select(UsageRollup.__table__)).mappings())
    assert stored_hours == _hourly_from_events(session)
    assert _stored_days(session) == _hourly_by_day(session)


PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    batches=ledgers(),
    repriced=st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from([None, "0.5", "0.000000000001"])), max_size=6
    ),
)
def test_daily_rollups_equal_the_hourly_rollups_summed_by_day(session, batches, repriced):
    with session.begin():
        try:
            for batch in batches:
                ingest(session, batch)
                _assert_exact(session)
            connection = session.connection()
            sequences = list(session.scalars(select(EventRecord.sequence).order_by(EventRecord.sequence)))
            changed = []
            for index, cost in repriced:  # re-pricing changes costs in place, outside ingest
                sequence = sequences[index % len(sequences)]
                value = None if cost is None else Decimal(cost)
                connection.execute(
                    update(EventRecord).where(EventRecord.sequence == sequence).values(upstream_cost=value)
                )
                changed.append(sequence)
            refresh_rollups(connection, changed)
            _assert_exact(session)
            # Both rebuilds give the same daily cells as the maintained ones.
            maintained = _stored_days(session)
            rebuild_rollups(connection)
            assert _stored_days(session) == maintained
            rebuild_days(connection)
            assert _stored_days(session) == maintained
        finally:
            session.rollback()


def test_a_merge_across_customers_moves_the_day_cells(session):
    """An unattributed event later attributed leaves the unattributed bucket's day for its customer's."""
    when = datetime(2026, 11, 3, 23, 59, tzinfo=UTC)
    full = UsageEvent(
        dedupe_key="call-1", occurred_at=when, customer_external_id="acme", event_name="gen_ai.call",
        provider="openai", request_model="gpt-4o", response_model="gpt-4o", input_tokens=100, output_tokens=7,
    )  # fmt: skip
    with session.begin():
        try:
            ingest(session, [dataclasses.replace(full, customer_external_id=None, output_tokens=None)])
            ingest(session, [full])
            _assert_exact(session)
            days = _stored_days(session)
            assert len(days) == 1
            ((key, measures),) = days.items()
            assert key.day == date(2026, 11, 3)
            assert measures.event_count == 1
            assert (measures.sums["output_tokens"], measures.counts["output_tokens"]) == (7, 1)
        finally:
            session.rollback()


def test_new_events_cost_three_daily_statements_per_batch(session):
    """A batch of new events touches the daily table with one SELECT, one UPDATE, one INSERT — never
    one statement per event or per cell."""

    def call(index: int, minutes: int, customer: str) -> UsageEvent:
        return UsageEvent(
            dedupe_key=f"call-{index}", occurred_at=T0 + timedelta(minutes=minutes),
            customer_external_id=customer, event_name="gen_ai.call", provider="openai",
            request_model="gpt-4o", input_tokens=10, output_tokens=3,
        )  # fmt: skip

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "usage_rollups_daily" in statement:
            statements.append(statement.split()[0].upper())

    with session.begin():
        try:
            ingest(session, [call(i, i * 7, ["acme", "globex"][i % 2]) for i in range(200)])
            engine = session.get_bind()
            event.listen(engine, "before_cursor_execute", record)
            try:
                # 300 events over four days, both customers: some day cells exist, some are new.
                ingest(
                    session,
                    [call(1000 + i, i * 20, ["acme", "globex", "initech"][i % 3]) for i in range(300)],
                )
            finally:
                event.remove(engine, "before_cursor_execute", record)
            assert sorted(statements) == ["INSERT", "SELECT", "UPDATE"]
            _assert_exact(session)
        finally:
            session.rollback()


def test_split_days_keeps_whole_days_apart_from_the_hours_around_them():
    h = lambda day, hour: datetime(2026, 11, day, hour, tzinfo=UTC)  # noqa: E731
    assert split_days(h(2, 5), h(5, 3)) == (
        (date(2026, 11, 3), date(2026, 11, 5)),
        [(h(2, 5), h(3, 0)), (h(5, 0), h(5, 3))],
    )
    assert split_days(h(2, 0), h(4, 0)) == ((date(2026, 11, 2), date(2026, 11, 4)), [])
    assert split_days(h(2, 5), h(3, 3)) == (None, [(h(2, 5), h(3, 3))])  # no whole day
    assert split_days(h(2, 5), h(2, 9)) == (None, [(h(2, 5), h(2, 9))])
    assert split_days(None, h(3, 3)) == ((None, date(2026, 11, 3)), [(h(3, 0), h(3, 3))])
    assert split_days(h(2, 5), None) == ((date(2026, 11, 3), None), [(h(2, 5), h(3, 0))])
    assert split_days(None, None) == ((None, None), [])


def test_day_measures_add_like_sql_sums():
    total = DayMeasures()
    assert total.sums["input_tokens"] is None and total.counts["input_tokens"] == 0
    other = DayMeasures(2, 1, {**total.sums, "input_tokens": 5}, {**total.counts, "input_tokens": 1})
    total.merge(other)
    total.merge(DayMeasures())  # nothing counted: the sum stays as it is, never 0 for NULL
    assert (total.event_count, total.unknown_cost_events) == (2, 1)
    assert (total.sums["input_tokens"], total.sums["output_tokens"]) == (5, None)


def test_migration_0905_backfills_the_daily_cells_from_the_hourly_ones(session, engine):
    from alembic import command

    from spanledger.billing.migrate import alembic_config, upgrade

    events = [
        UsageEvent(
            dedupe_key=f"call-{i}",
            occurred_at=T0 + timedelta(hours=5 * i),
            customer_external_id=["acme", None][i % 2],
            event_name="gen_ai.call",
            provider="openai",
            request_model="gpt-4o",
            input_tokens=i,
            output_tokens=None,
        )
        for i in range(12)
    ]
    with session.begin():
        ingest(session, events)
    maintained = _stored_days(session)
    session.rollback()
    assert len(maintained) >= 4 and maintained == _hourly_by_day(session)
    session.rollback()  # SQLite: no read transaction may hold the file while the migration writes
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.stamp(config, "head")  # the fixture created the tables without migrations
        command.downgrade(config, "0904_credit_unlimited")
    upgrade(engine)
    assert _stored_days(session) == maintained
