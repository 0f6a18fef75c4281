"""Load: many concurrent writers with overlapping batches; every event stored once, nothing lost."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord, IngestState
from spanledger.billing.usage_event import UsageEvent

pytestmark = pytest.mark.slow

EVENTS = 20_000
WRITERS = 4
BATCH = 250
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _event(i: int) -> UsageEvent:
    return UsageEvent(
        dedupe_key=f"openai:resp-{i}",
        occurred_at=T0 + timedelta(seconds=i),
        customer_external_id=f"customer-{i % 37}",
        provider="openai",
        request_model="gpt-4o",
        input_tokens=100 + i % 1000,
        output_tokens=i % 97,
    )


def test_concurrent_overlapping_ingest_stores_every_event_exactly_once(database_url, engine):
    errors: list[BaseException] = []
    inserted_per_writer = [0] * WRITERS

    def writer(number: int) -> None:
        # Each writer sends every event once, in its own shuffled order: 4x overlap.
        order = list(range(EVENTS))
        random.Random(number).shuffle(order)
        local = create_engine_from_url(database_url)
        factory = make_session_factory(local)
        try:
            for start in range(0, EVENTS, BATCH):
                with factory() as session, session.begin():
                    result = ingest(session, [_event(i) for i in order[start : start + BATCH]])
                assert result.rejected == ()
                inserted_per_writer[number] += result.inserted
        except BaseException as exc:
            errors.append(exc)
        finally:
            local.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(inserted_per_writer) == EVENTS
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(EventRecord)) == EVENTS
        assert session.scalar(select(func.count(func.distinct(EventRecord.sequence)))) == EVENTS
        assert session.scalar(select(IngestState.ingested_events)) == EVENTS
        expected_input = sum(100 + i % 1000 for i in range(EVENTS))
        assert session.scalar(select(func.sum(EventRecord.input_tokens))) == expected_input
