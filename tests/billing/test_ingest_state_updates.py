"""ingest's per-batch statements (built once, executed per batch) record what they always did:
``last_ingest_at`` for every batch that reaches the database, ``ingested_events`` counting new events
only, and customers found or created by external id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from spanledger.billing.ingest import ensure_customers, ingest
from spanledger.billing.models import Customer, IngestState
from spanledger.billing.usage_event import UNATTRIBUTED_CUSTOMER, UsageEvent

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def event(key: str, customer: str | None = "acme") -> UsageEvent:
    return UsageEvent(
        key, T0, customer, provider="openai", request_model="gpt-4o", input_tokens=5, output_tokens=1
    )


def state(session) -> tuple[int, datetime | None]:
    with session.begin():
        row = session.execute(select(IngestState.ingested_events, IngestState.last_ingest_at)).one()
    return row.ingested_events, row.last_ingest_at


def test_counter_and_last_ingest_time_follow_each_batch(session):
    with session.begin():
        ingest(session, [event("a"), event("b", None)], received_at=T0)
    assert state(session) == (2, T0)
    later = T0 + timedelta(seconds=5)
    with session.begin():
        result = ingest(session, [event("a"), event("b", None)], received_at=later)
    assert result.duplicates == 2
    assert state(session) == (2, later)  # locked and stamped, nothing counted
    with session.begin():
        ingest(session, [event("c", "globex"), event("a"), event("d")], received_at=later + timedelta(1))
    assert state(session) == (4, later + timedelta(1))


def test_customers_are_found_or_created_by_external_id(session):
    with session.begin():
        first = ensure_customers(session.connection(), ["acme", "globex", "acme"], T0)
    with session.begin():
        second = ensure_customers(session.connection(), ["globex", "initech", UNATTRIBUTED_CUSTOMER], T0)
    assert sorted(first) == ["acme", "globex"]
    assert second["globex"] == first["globex"]
    assert len({*first.values(), *second.values()}) == 4
    with session.begin():
        stored = {
            external_id: id_
            for external_id, id_ in session.execute(select(Customer.external_id, Customer.id))
        }
    assert stored == {**first, **second}
