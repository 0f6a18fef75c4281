"""The bulk event writer: ON CONFLICT skips stored keys, the driver's row count tells what went in,
sequences follow batch order, and values are stored exactly as through the ORM."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import select

from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 2, 12, 30, 15, 123456, tzinfo=UTC)


def call(key: str, minutes: int = 0, **extra) -> UsageEvent:
    return UsageEvent(
        key, T0 + timedelta(minutes=minutes), "acme", provider="openai", response_model="gpt-4o",
        input_tokens=1000, output_tokens=10, **extra,
    )  # fmt: skip


def stored(session) -> dict[str, EventRecord]:
    """The stored events by key, in sequence order (read in a transaction of its own)."""
    with session.begin():
        rows = session.scalars(select(EventRecord).order_by(EventRecord.sequence)).all()
        session.expunge_all()
    return {row.dedupe_key: row for row in rows}


def test_a_batch_mixing_stored_and_new_keys_inserts_only_the_new_ones_in_order(session):
    with session.begin():
        first = ingest(session, [call("a"), call("b")])
    with session.begin():
        second = ingest(session, [call("c"), call("b"), call("d"), call("a")])
    assert (first.inserted, second.inserted, second.duplicates) == (2, 2, 2)
    rows = stored(session)
    assert list(rows) == ["a", "b", "c", "d"]
    assert second.inserted_sequences == (rows["c"].sequence, rows["d"].sequence)
    assert rows["b"].sequence < rows["c"].sequence < rows["d"].sequence
    # A batch of nothing but stored keys inserts nothing and numbers nothing.
    with session.begin():
        third = ingest(session, [call("d"), call("c")])
    assert (third.inserted, third.duplicates, third.inserted_sequences) == (0, 2, ())
    with session.begin():
        fourth = ingest(session, [call("e")])
    assert fourth.inserted_sequences[0] > rows["d"].sequence


def test_values_read_back_exactly(session):
    received = datetime(2026, 11, 2, 13, 0, 0, 1, tzinfo=UTC)
    metadata = {"service.name": "shop", "n": 3, "ok": True, "tags": ["a", "b"]}
    event = call("x", metadata=metadata, trace_id="ab" * 16)
    with session.begin():
        ingest(session, [event], received_at=received)
    row = stored(session)["x"]
    assert row.occurred_at == T0 and row.received_at == received
    assert row.upstream_cost == D("0.0026") and row.upstream_cost_currency == "USD"
    assert row.event_metadata == {"service.name": "shop", "n": 3, "ok": True, "tags": ["a", "b"]}
    assert (row.input_tokens, row.output_tokens, row.cache_read_input_tokens) == (1000, 10, None)
    assert row.trace_id == "ab" * 16 and row.span_id is None


def test_metadata_documents_that_python_calls_equal_are_stored_as_given(session):
    """1, 1.0 and True are equal (and hash alike) in Python, not in JSON: each row keeps its own."""
    variants = {"int": {"n": 1}, "float": {"n": 1.0}, "bool": {"n": True}, "same": {"n": 1}}
    with session.begin():
        ingest(session, [call(key, metadata=metadata) for key, metadata in variants.items()])
    rows = stored(session)
    for key, metadata in variants.items():
        stored_value = rows[key].event_metadata["n"]
        assert stored_value == metadata["n"] and type(stored_value) is type(metadata["n"]), key
