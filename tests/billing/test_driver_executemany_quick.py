"""driver_executemany's quick bind processors and column-wise parameters equal SQLAlchemy's own.

The quick processors (UTCDateTime on both databases, integer-stored ExactDecimal on SQLite) must give
the driver exactly what SQLAlchemy's processors give — the same value of the same type, or the same
error — for any value; and a bulk insert through :func:`executemany` must store exactly what
``connection.execute(insert(table), rows)`` stores.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from spanledger.billing.driver_executemany import (
    _driver_parameters,
    _outcome,
    _prepare,
    _quick_processor,
    executemany,
)
from spanledger.billing.ingest import ensure_customers
from spanledger.billing.models import EventRecord
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": psycopg.dialect()}
_table = EventRecord.__table__


def processors(type_, dialect_name):
    dialect = DIALECTS[dialect_name]
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return _quick_processor(type_, dialect, processor), processor


@pytest.mark.parametrize(
    ("type_", "dialect_name", "quick_expected"),
    [
        (UTCDateTime(), "sqlite", True),
        (UTCDateTime(), "postgresql", True),
        (ExactDecimal(), "sqlite", True),
        (ExactDecimal(6), "sqlite", True),
        (ExactDecimal(), "postgresql", False),
        (ExactDecimal(12, sqlite_storage="text"), "sqlite", False),
    ],
)
def test_quick_processors_are_used_where_expected(type_, dialect_name, quick_expected):
    quick, processor = processors(type_, dialect_name)
    assert (quick is not processor) == quick_expected


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11)), ZoneInfo("UTC"),
     ZoneInfo("Europe/Paris"), None]
)  # fmt: skip


class SubclassedDatetime(datetime):
    pass


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.datetimes(timezones=ZONES),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2), timezones=ZONES),
        st.datetimes(min_value=datetime(9999, 12, 31), timezones=ZONES),
        st.datetimes().map(lambda d: SubclassedDatetime.combine(d.date(), d.time(), UTC)),
        st.dates(),
        st.text(max_size=3),
    ),
    dialect_name=st.sampled_from(sorted(DIALECTS)),
)
def test_quick_datetime_equals_sqlalchemys_processor(value, dialect_name):
    quick, processor = processors(UTCDateTime(), dialect_name)
    assert _outcome(quick, value) == _outcome(processor, value)


DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-10**7, max_value=10**7, places=12),
    st.decimals(min_value=-10**7, max_value=10**7, places=13),
    st.decimals(min_value=-10**20, max_value=10**20, places=0),
    st.builds(
        lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
        st.integers(-10**40, 10**40),
        st.integers(-40, 20),
    ),
    st.sampled_from([Decimal("-0"), Decimal("-0E-20"), Decimal("0E+10"), Decimal("9223372.036854775807"),
                     Decimal("9223372.036854775808"), Decimal("-9223372.036854775808"), Decimal("1E-12"),
                     Decimal("1.0000000000000000000000000000000"), Decimal("sNaN")]),
    st.integers(-10**20, 10**20),
    st.floats(allow_nan=True),
    st.sampled_from(["1.5", "abc", "1e-13", True]),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(value=DECIMALS, places=st.sampled_from([12, 6, 0]))
def test_quick_exact_decimal_equals_sqlalchemys_processor(value, places):
    quick, processor = processors(ExactDecimal(places), "sqlite")
    assert quick is not processor
    assert _outcome(quick, value) == _outcome(processor, value)


@pytest.mark.parametrize("precision", [5, 18, 19, 40])
def test_quick_exact_decimal_follows_the_decimal_context(precision):
    quick, processor = processors(ExactDecimal(), "sqlite")
    values = [Decimal("123456.123456789012"), Decimal("1.5"), Decimal("9223372.036854775807"), Decimal(7)]
    with localcontext(prec=precision):
        for value in values:
            assert _outcome(quick, value) == _outcome(processor, value)


def test_column_parameters_equal_row_by_row_processing():
    """Every column, None, shared objects, equal JSON documents of different value types."""
    when = datetime(2026, 11, 3, 10, 0, 0, 5, tzinfo=UTC)
    documents = [
        {"n": 1}, {"n": 1.0}, {"n": True}, {"n": 1}, {"tags": ["a", "b"]}, {}, {"ü": "\u2603"},
        {"a": 1, "b": 2}, {"b": 2, "a": 1}, {1: "x"}, {True: "x"}, {"1": "x"}, {1.0: "x"}, {"a": 1, "b": 2},
    ]  # fmt: skip
    rows = [
        _row(index, occurred_at=when + timedelta(seconds=index % 3), received_at=when, metadata=document,
             upstream_cost=[None, Decimal("0"), Decimal("0.000000000001"), Decimal("1.5")][index % 4])
        for index, document in enumerate(documents)
    ]  # fmt: skip
    rows[1]["occurred_at"] = datetime(2026, 11, 3, 11, tzinfo=timezone(timedelta(hours=1)))  # not UTC
    for dialect_name, dialect in DIALECTS.items():
        statement = insert(_table)
        prepared = _prepare(statement, dialect, rows[0].keys())
        binds = statement.compile(dialect=dialect).binds
        expected = []
        for row in rows:
            values = []
            for name in prepared.names:
                processor = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                value = row[name]
                values.append(value if processor is None or value is None else processor(value))
            expected.append(
                tuple(values) if prepared.positional else dict(zip(prepared.names, values, strict=True))
            )
        assert [_typed(p) for p in _driver_parameters(prepared, rows)] == [_typed(p) for p in expected], (
            dialect_name
        )


def _typed(parameters):
    """Each value's type and text (psycopg's JSON wrapper by the document it wraps: 1, 1.0, True differ)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return [(type(value), repr(getattr(value, "obj", value))) for value in values]


def _row(index: int, **values) -> dict:
    row = {
        "sequence": 100 + index,
        "dedupe_key": f"key-{index}",
        "event_name": "gen_ai.call",
        "customer_id": 1,
        "occurred_at": datetime(2026, 11, 3, tzinfo=UTC),
        "received_at": datetime(2026, 11, 3, tzinfo=UTC),
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o",
        "response_model": None,
        "response_id": None,
        "input_tokens": 10,
        "cache_read_input_tokens": None,
        "cache_write_input_tokens": 0,
        "output_tokens": 10_000_000_000,
        "reasoning_tokens": None,
        "upstream_cost": Decimal("0.000123"),
        "upstream_cost_currency": "USD",
        "price_source": "genai-prices",
        "trace_id": None,
        "span_id": "ab" * 8,
        "metadata": {},
    }
    row.update(values)
    return row


def test_bulk_insert_stores_what_sqlalchemy_stores(session):
    when = datetime(2026, 11, 3, 10, 0, 0, 0, tzinfo=UTC)
    variants = [
        {"occurred_at": when, "upstream_cost": None, "metadata": {"n": 1}},
        {"occurred_at": when, "upstream_cost": Decimal("0"), "metadata": {"n": 1.0}},
        {"occurred_at": when.astimezone(ZoneInfo("Europe/Paris")), "metadata": {"n": True}},
        {"occurred_at": datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "upstream_cost": Decimal("9000000.5")},
        {"occurred_at": when + timedelta(microseconds=999_999), "upstream_cost": Decimal("1E-12"),
         "metadata": {"ü": "\u2603 snow", "list": [1, "a", None, 2.5], "big": 2**62}},
        {"upstream_cost_currency": "EUR", "price_source": "override:acme/acme-1@2026-01-01",
         "upstream_cost": Decimal("-0.25"), "metadata": {"n": 1}},
    ]  # fmt: skip
    with session.begin():
        connection = session.connection()
        customer = ensure_customers(connection, ["acme"], when)["acme"]
        ours = [_row(i, customer_id=customer, **v) for i, v in enumerate(variants)]
        theirs = [_row(i + 50, customer_id=customer, **v) for i, v in enumerate(variants)]
        result = executemany(connection, insert(_table), ours)
        assert result is not None and result.rowcount == len(ours)
        connection.execute(insert(_table), theirs)
        stored = {
            row[0]: row[1:]
            for row in connection.exec_driver_sql(
                "SELECT sequence, occurred_at, received_at, upstream_cost, upstream_cost_currency, "
                "price_source, metadata, input_tokens, output_tokens, cache_read_input_tokens, span_id "
                "FROM usage_events"
            )
        }
    for index in range(len(variants)):
        assert stored[100 + index] == stored[150 + index], variants[index]
