"""Ingest prices a batch before its transaction with the overrides it saw last, and checks them under
the ingest lock: an override added or removed between two batches is always honoured."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

from sqlalchemy import delete, select

from spanledger.billing.costs import GENAI_PRICES_SOURCE
from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord, PriceOverrideRecord
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def call(key: str) -> UsageEvent:
    return UsageEvent(
        key, T0, "acme", provider="openai", response_model="gpt-4o", input_tokens=1_000_000, output_tokens=0
    )


def stored_cost(session, key: str) -> tuple[D | None, str | None]:
    row = session.scalars(select(EventRecord).where(EventRecord.dedupe_key == key)).one()
    return row.upstream_cost, row.price_source


def override() -> PriceOverrideRecord:
    return PriceOverrideRecord(
        provider="openai", model="gpt-4o", valid_from=date(2026, 1, 1), currency="USD",
        input_per_million=D("1.10"), output_per_million=D("4"),
    )  # fmt: skip


def test_an_override_added_between_batches_prices_the_next_batch(session):
    with session.begin():
        ingest(session, [call("before")])  # this process has now seen "no overrides"
    with session.begin():
        session.add(override())
    with session.begin():
        ingest(session, [call("after")])
    assert stored_cost(session, "before") == (D("2.5"), GENAI_PRICES_SOURCE)
    assert stored_cost(session, "after") == (D("1.1"), "override:openai/gpt-4o@2026-01-01")


def test_an_override_removed_between_batches_no_longer_prices(session):
    with session.begin():
        session.add(override())
    with session.begin():
        ingest(session, [call("with")])
    with session.begin():
        session.execute(delete(PriceOverrideRecord))
    with session.begin():
        ingest(session, [call("without")])
    assert stored_cost(session, "with") == (D("1.1"), "override:openai/gpt-4o@2026-01-01")
    assert stored_cost(session, "without") == (D("2.5"), GENAI_PRICES_SOURCE)


def test_validated_skips_only_the_contract_check_not_the_metadata_check(session):
    """``validated=True`` trusts the caller's validate_event; unstorable metadata is still refused."""
    good = call("good")
    unstorable = UsageEvent("bad", T0, "acme", provider="openai", metadata={"k\x00": "NUL"})
    with session.begin():
        result = ingest(session, [good, unstorable], validated=True)
    assert result.inserted == 1
    assert [(r.index, r.dedupe_key) for r in result.rejected] == [(1, "bad")]
    assert "NUL" in result.rejected[0].reason
