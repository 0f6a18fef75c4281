"""Meters computed in SQL must equal a plain-Python reference, on SQLite and on PostgreSQL alike."""

import fnmatch
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from spanledger.billing.errors import ConflictError, InvalidMeterError, NotFoundError
from spanledger.billing.ingest import ingest
from spanledger.billing.meters import (
    Aggregation,
    MeterDefinition,
    aggregate_values,
    create_meter,
    get_meter,
    meter_usage,
    to_definition,
)
from spanledger.billing.models import EventRecord
from spanledger.billing.rollups import rebuild_rollups
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 1, tzinfo=UTC)
START, END = T0, T0 + timedelta(days=30)

EVENTS = [
    # key, customer, provider, model, input, cached, output, reasoning, cost, metadata, day
    (
        "e1",
        "acme",
        "openai",
        "gpt-4o",
        1000,
        200,
        50,
        None,
        "0.003000000001",
        {"feature": "chat", "seats": 3},
        0,
    ),
    (
        "e2",
        "acme",
        "openai",
        "gpt-4o-mini",
        500,
        None,
        25,
        10,
        "0.000105",
        {"feature": "search", "seats": 3},
        1,
    ),
    ("e3", "acme", "anthropic", "claude-sonnet-4-5", 2000, 1500, 100, None, None, {"feature": "chat"}, 2),
    ("e4", "globex", "openai", "gpt-4o", 10, 0, 5, 0, "0.000075", {"feature": "chat", "seats": 10}, 3),
    ("e5", "globex", "gemini", "gemini-2.5-flash", None, None, None, None, None, {}, 4),
    ("e6", "globex", "openai", "gpt-4o", 7, None, 3, None, "0.00004750", {"feature": "chat"}, 40),  # outside
    ("e7", None, "openai", "gpt-4o", 300, None, 30, None, None, {"feature": "chat"}, 5),
]


def _event(row) -> UsageEvent:
    key, customer, provider, model, inp, cached, out, reasoning, _cost, metadata, day = row
    return UsageEvent(
        dedupe_key=key,
        occurred_at=T0 + timedelta(days=day, hours=1),
        customer_external_id=customer,
        provider=provider,
        operation="chat",
        request_model=model,
        input_tokens=inp,
        cache_read_input_tokens=cached,
        output_tokens=out,
        reasoning_tokens=reasoning,
        metadata=metadata,
    )


@pytest.fixture
def ledger(session):
    with session.begin():
        ingest(session, [_event(row) for row in EVENTS])
        # Pin each event's cost (ingest prices known models with genai-prices) so the reference holds.
        for row in EVENTS:
            cost = Decimal(row[8]) if row[8] is not None else None
            session.execute(
                update(EventRecord).where(EventRecord.dedupe_key == row[0]).values(upstream_cost=cost)
            )
        # The costs were changed behind ingest's back: bring the hourly rollups back in line.
        rebuild_rollups(session.connection())
    return session


def _plain(row) -> dict:
    _key, customer, provider, model, inp, cached, out, reasoning, cost, metadata, day = row
    total = None if inp is None and out is None else (inp or 0) + (out or 0)
    values = dict(
        customer=customer or "(unattributed)",
        provider=provider,
        model=model,
        input_tokens=inp,
        cache_read_input_tokens=cached,
        output_tokens=out,
        reasoning_tokens=reasoning,
        total_tokens=total,
        upstream_cost=Decimal(cost) if cost else None,
        day=day,
    )
    values.update({f"metadata.{k}": v for k, v in metadata.items()})
    return values


def _matches(event: dict, filter_json) -> bool:
    if filter_json is None:
        return True
    if "and" in filter_json:
        return all(_matches(event, f) for f in filter_json["and"])
    if "or" in filter_json:
        return any(_matches(event, f) for f in filter_json["or"])
    actual, op, value = event.get(filter_json["field"]), filter_json["op"], filter_json["value"]
    if actual is None:
        return False
    if op in ("gt", "gte", "lt", "lte") or (isinstance(value, int) and not isinstance(actual, str)):
        actual, value = Decimal(actual), (Decimal(value) if not isinstance(value, list) else value)
    return {
        "eq": lambda: actual == value,
        "ne": lambda: actual != value,
        "gt": lambda: actual > value,
        "gte": lambda: actual >= value,
        "lt": lambda: actual < value,
        "lte": lambda: actual <= value,
        "like": lambda: fnmatch.fnmatchcase(actual, value.replace("%", "*").replace("_", "?")),
        "in": lambda: actual in value,
    }[op]()


def _reference(definition: MeterDefinition, group_by: str | None) -> dict:
    filter_json = definition.to_json()["filter"]
    groups: dict = {}
    for row in EVENTS:
        event = _plain(row)
        if not (0 <= event["day"] < 30) or not _matches(event, filter_json):
            continue
        key = (event["customer"], None if group_by is None else event.get(group_by))
        groups.setdefault(key, []).append(event.get(definition.field) if definition.field else 1)
    return {
        (customer, None if group is None else str(group)): aggregate_values(definition.aggregation, values)
        for (customer, group), values in groups.items()
    }


CASES = [
    ("count", None, None, None),
    ("sum", "input_tokens", None, None),
    ("sum", "total_tokens", None, "model"),
    ("sum", "upstream_cost", None, "provider"),
    ("max", "output_tokens", {"field": "provider", "op": "eq", "value": "openai"}, None),
    ("min", "input_tokens", {"field": "provider", "op": "ne", "value": "gemini"}, None),
    ("avg", "output_tokens", None, None),
    ("avg", "upstream_cost", None, None),
    ("unique", "model", None, None),
    ("unique", "metadata.feature", None, "provider"),
    ("sum", "cache_read_input_tokens", {"field": "model", "op": "like", "value": "gpt-4o%"}, None),
    ("sum", "input_tokens", {"field": "provider", "op": "in", "value": ["anthropic", "gemini"]}, None),
    (
        "count",
        None,
        {
            "and": [
                {"field": "input_tokens", "op": "gte", "value": 500},
                {"field": "output_tokens", "op": "lt", "value": 100},
            ]
        },
        None,
    ),
    (
        "count",
        None,
        {
            "or": [
                {"field": "metadata.feature", "op": "eq", "value": "search"},
                {"field": "upstream_cost", "op": "gt", "value": "0.003"},
            ]
        },
        None,
    ),
    ("sum", "input_tokens", {"field": "metadata.seats", "op": "gte", "value": 5}, "metadata.feature"),
    ("max", "metadata.seats", None, None),
    ("sum", "reasoning_tokens", None, "model"),
]


@pytest.mark.parametrize(("aggregation", "field", "filter_json", "group_by"), CASES)
def test_meter_usage_equals_the_python_reference(ledger, aggregation, field, filter_json, group_by):
    definition = MeterDefinition.parse("m", aggregation, field, filter=filter_json)
    rows = meter_usage(ledger, definition, start=START, end=END, group_by=group_by)
    actual = {(r.customer, r.group): r.value for r in rows}
    assert actual == _reference(definition, group_by)
    for value in actual.values():
        assert value is None or isinstance(value, Decimal)


def test_exact_decimal_digits_are_the_same_on_every_database(ledger):
    definition = MeterDefinition.parse("cost", "sum", "upstream_cost")
    rows = meter_usage(ledger, definition, start=START, end=END, customer="acme")
    assert [str(r.value) for r in rows] == ["0.003105000001"]
    avg = MeterDefinition.parse("avg", "avg", "output_tokens")
    assert str(meter_usage(ledger, avg, start=START, end=END, customer="acme")[0].value) == "58.333333333333"


def test_a_customer_without_events_gets_a_zero_or_no_value(ledger):
    total = MeterDefinition.parse("t", "sum", "input_tokens")
    assert meter_usage(ledger, total, start=START, end=END, customer="nobody")[0].value == Decimal(0)
    peak = MeterDefinition.parse("p", "max", "input_tokens")
    assert meter_usage(ledger, peak, start=START, end=END, customer="nobody")[0].value is None


def test_the_window_is_half_open(ledger):
    count = MeterDefinition.parse("c", "count")
    day_two = T0 + timedelta(days=2, hours=1)
    assert (
        meter_usage(ledger, count, start=day_two, end=day_two + timedelta(seconds=1), customer="acme")[
            0
        ].value
        == 1
    )
    assert meter_usage(ledger, count, start=T0, end=day_two, customer="acme")[0].value == 2


def test_events_of_other_names_are_not_counted(ledger):
    other = MeterDefinition.parse("o", "count", event_name="embeddings.call")
    assert meter_usage(ledger, other, start=START, end=END) == []


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("m", "median", "input_tokens"), {}, "unknown aggregation"),
        (("m", "sum"), {}, "needs a field"),
        (("m", "count", "input_tokens"), {}, "takes no field"),
        (("m", "sum", "provider"), {}, "numeric field"),
        (("m", "sum", "tokens"), {}, "unknown field 'tokens'"),
        (
            ("m", "count"),
            {"filter": {"field": "provider", "op": "gt", "value": "a"}},
            "needs a numeric field",
        ),
        (("m", "count"), {"filter": {"field": "provider", "op": "regex", "value": "a"}}, "unknown operator"),
        (("m", "count"), {"filter": {"field": "input_tokens", "op": "eq", "value": "ten"}}, "not a number"),
        (("m", "count"), {"filter": {"field": "input_tokens", "op": "eq", "value": 1.5}}, "decimal strings"),
        (("m", "count"), {"filter": {"and": []}}, "non-empty list"),
        (("m", "count"), {"filter": {"field": "provider", "op": "in", "value": "openai"}}, "non-empty list"),
        (("m", "count"), {"filter": {"field": "provider"}}, "exactly the keys"),
        (("", "count"), {}, "meter name"),
    ],
)
def test_bad_meters_are_rejected_with_a_clear_reason(args, kwargs, message):
    with pytest.raises(InvalidMeterError, match=message):
        MeterDefinition.parse(*args, **kwargs)


def test_meters_are_stored_and_read_back(session):
    definition = MeterDefinition.parse(
        "gpt-input", "sum", "input_tokens", filter={"field": "model", "op": "like", "value": "gpt-%"}
    )
    with session.begin():
        create_meter(session, definition)
    with session.begin():
        assert to_definition(get_meter(session, "gpt-input")) == definition
    with pytest.raises(ConflictError, match="already exists"), session.begin():
        create_meter(session, definition)
    with pytest.raises(NotFoundError, match="meters list"):
        get_meter(session, "missing")


def test_bad_windows_are_rejected(session):
    count = MeterDefinition.parse("c", "count")
    with pytest.raises(InvalidMeterError, match="before it starts"):
        meter_usage(session, count, start=END, end=START)
    with pytest.raises(InvalidMeterError, match="timezone-aware"):
        meter_usage(session, count, start=datetime(2026, 11, 1), end=datetime(2026, 12, 1))


def test_aggregate_values_reference_semantics():
    assert aggregate_values(Aggregation.SUM, []) == 0
    assert aggregate_values(Aggregation.MAX, [None]) is None
    assert aggregate_values(Aggregation.UNIQUE, ["a", "a", None, "b"]) == 2
    assert aggregate_values(Aggregation.AVG, [1, 2, None]) == Decimal("1.5")
