import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.ingest import ingest, merge_event
from spanledger.billing.models import Customer, EventRecord, IngestState
from spanledger.billing.usage_event import UNATTRIBUTED_CUSTOMER, UsageEvent

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(key: str, customer: str | None = "acme", **values) -> UsageEvent:
    values.setdefault("input_tokens", 100)
    values.setdefault("output_tokens", 10)
    return UsageEvent(dedupe_key=key, occurred_at=T0, customer_external_id=customer, **values)


def stored(session) -> dict[str, EventRecord]:
    return {row.dedupe_key: row for row in session.scalars(select(EventRecord))}


def test_ingest_stores_each_event_once_and_reports_duplicates(session):
    with session.begin():
        first = ingest(session, [event("a"), event("b")])
    with session.begin():
        second = ingest(session, [event("a"), event("b"), event("c")])
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (second.inserted, second.duplicates, second.merged) == (1, 2, 0)
    assert sorted(stored(session)) == ["a", "b", "c"]
    assert session.scalar(select(IngestState.ingested_events)) == 3


def test_one_bad_event_never_loses_the_good_ones(session):
    batch = [event("good-1"), event("bad", input_tokens=-5), event("good-2"), "not an event"]
    with session.begin():
        result = ingest(session, batch)
    assert result.inserted == 2
    assert [(r.index, r.dedupe_key) for r in result.rejected] == [(1, "bad"), (3, None)]
    assert "input_tokens is negative" in result.rejected[0].reason
    assert sorted(stored(session)) == ["good-1", "good-2"]


def test_values_round_trip_exactly(session):
    with session.begin():
        ingest(
            session,
            [
                event(
                    "k",
                    provider="anthropic",
                    operation="chat",
                    request_model="claude-sonnet-4-5",
                    input_tokens=2_000_000_000,
                    cache_read_input_tokens=1_500_000_000,
                    reasoning_tokens=None,
                    trace_id="0" * 32,
                    span_id="1" * 16,
                    metadata={"service.name": "writer", "nested": {"a": [1, 2]}},
                )
            ],
        )
    row = stored(session)["k"]
    assert row.input_tokens == 2_000_000_000 and row.cache_read_input_tokens == 1_500_000_000
    assert row.reasoning_tokens is None and row.cache_write_input_tokens is None
    assert row.occurred_at == T0 and row.occurred_at.tzinfo is not None
    assert row.event_metadata == {"service.name": "writer", "nested": {"a": [1, 2]}}


def test_unknown_customers_are_created_and_unattributed_usage_is_kept(session):
    with session.begin():
        ingest(session, [event("a", "new-co"), event("b", None)])
    customers = {c.external_id: c for c in session.scalars(select(Customer))}
    assert set(customers) == {"new-co", UNATTRIBUTED_CUSTOMER}
    assert customers["new-co"].currency == "USD"
    rows = stored(session)
    assert rows["b"].customer_id == customers[UNATTRIBUTED_CUSTOMER].id


def test_a_second_record_of_the_same_call_completes_the_first(session):
    sdk_record = event(
        "openai:resp-1", None, input_tokens=100, output_tokens=10, cache_read_input_tokens=None
    )
    our_record = event("openai:resp-1", "acme", cache_read_input_tokens=40, request_model="gpt-4o")
    with session.begin():
        ingest(session, [sdk_record])
    with session.begin():
        result = ingest(session, [our_record])
    assert (result.inserted, result.merged, result.duplicates) == (0, 1, 0)
    row = stored(session)["openai:resp-1"]
    acme = session.scalar(select(Customer).where(Customer.external_id == "acme"))
    assert row.customer_id == acme.id
    assert row.cache_read_input_tokens == 40 and row.request_model == "gpt-4o"
    assert result.merged_sequences == (row.sequence,)


def test_merge_keeps_stored_values_and_is_order_independent():
    a = event("k", None, input_tokens=100, output_tokens=None, metadata={"x": 1})
    b = event("k", "acme", input_tokens=999, output_tokens=7, metadata={"x": 2, "y": 3})
    ab, ba = merge_event(a, b), merge_event(b, a)
    assert ab is not None and ab.input_tokens == 100 and ab.output_tokens == 7
    assert ab.customer_external_id == "acme" and ab.metadata == {"x": 1, "y": 3}
    assert ba is None  # b already has everything a could add
    assert merge_event(ab, b) is None


def test_a_merge_that_would_break_the_contract_is_refused():
    stored_event = event("k", "acme", input_tokens=10, cache_read_input_tokens=None)
    assert merge_event(stored_event, event("k", "acme", input_tokens=10, cache_read_input_tokens=50)) is None


def test_in_batch_repeats_are_merged_before_storage(session):
    with session.begin():
        result = ingest(
            session, [event("k", None), event("k", "acme", reasoning_tokens=3), event("k", "acme")]
        )
    assert (result.inserted, result.merged, result.duplicates) == (1, 1, 1)
    assert stored(session)["k"].reasoning_tokens == 3


def test_sequence_numbers_grow_in_commit_order(session):
    with session.begin():
        ingest(session, [event(f"a{i}") for i in range(5)])
    with session.begin():
        ingest(session, [event(f"b{i}") for i in range(5)])
    rows = sorted(stored(session).values(), key=lambda r: r.sequence)
    assert [r.dedupe_key for r in rows] == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]


def test_upstream_cost_is_an_exact_decimal(session):
    with session.begin():
        ingest(session, [event("k")])
        row = session.scalar(select(EventRecord))
        row.upstream_cost = Decimal("0.000002500001")
    session.expire_all()
    assert session.scalar(select(EventRecord.upstream_cost)) == Decimal("0.000002500001")
    assert session.scalar(select(func.sum(EventRecord.upstream_cost))) == Decimal("0.000002500001")


def test_concurrent_ingest_of_overlapping_batches_stores_each_event_once(database_url, engine):
    keys = [f"k{i}" for i in range(60)]
    errors: list[BaseException] = []
    results = []

    def worker(offset: int) -> None:
        local_engine = create_engine_from_url(database_url)
        factory = make_session_factory(local_engine)
        try:
            rotated = keys[offset:] + keys[:offset]
            for start in range(0, 60, 10):
                batch = [event(k) for k in rotated[start : start + 10]]
                with factory() as s, s.begin():
                    results.append(ingest(s, batch))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            local_engine.dispose()

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in (0, 5, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with make_session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(EventRecord)) == 60
    assert sum(r.inserted for r in results) == 60
    assert sum(r.inserted + r.duplicates for r in results) == 180


@pytest.mark.parametrize(
    "bad",
    [{"k": float("nan")}, {"k": "a\x00b"}, {"a\x00b": 1}, {"k": [1, float("inf")]}, {"k": {"x": "\x00"}}],
)
def test_metadata_that_a_database_cannot_store_is_rejected(session, bad):
    with session.begin():
        result = ingest(session, [event("bad", metadata=bad), event("good")])
    assert result.inserted == 1 and result.rejected[0].dedupe_key == "bad"
