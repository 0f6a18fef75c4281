from datetime import UTC, date, datetime
from decimal import Decimal as D

from sqlalchemy import select

from spanledger.billing.costs import GENAI_PRICES_SOURCE
from spanledger.billing.credits import CreditPack
from spanledger.billing.credits.service import balance, grant_once, purchase_pack
from spanledger.billing.ingest import ingest
from spanledger.billing.meters import MeterDefinition, create_meter
from spanledger.billing.models import CreditEntryRecord, CreditMeter, EventRecord, PriceOverrideRecord
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)


def call(key, model="gpt-4o", customer="acme", **tokens):
    tokens.setdefault("input_tokens", 1_000_000)
    tokens.setdefault("output_tokens", 0)
    return UsageEvent(key, T0, customer, provider="openai", response_model=model, **tokens)


def setup_credit_meter(session, units_per_credit=D(1000)):
    meter = create_meter(session, MeterDefinition.parse("tokens", "sum", "total_tokens"))
    session.add(CreditMeter(meter_id=meter.id, units_per_credit=units_per_credit))
    session.flush()
    return meter


def test_ingest_stores_upstream_cost_and_source_and_null_for_unknown_models(session):
    with session.begin():
        ingest(session, [call("known"), call("unknown", model="house-model-1")])
    rows = {r.dedupe_key: r for r in session.scalars(select(EventRecord))}
    assert (rows["known"].upstream_cost, rows["known"].price_source) == (D("2.5"), GENAI_PRICES_SOURCE)
    assert rows["known"].upstream_cost_currency == "USD"
    assert rows["unknown"].upstream_cost is None and rows["unknown"].price_source is None


def test_override_table_wins_at_ingest(session):
    with session.begin():
        session.add(
            PriceOverrideRecord(
                provider="openai", model="gpt-4o", valid_from=date(2026, 1, 1), currency="USD",
                input_per_million=D("1.10"), output_per_million=D("4"),
            )
        )  # fmt: skip
    with session.begin():
        ingest(session, [call("k")])
    row = session.scalar(select(EventRecord))
    assert row.upstream_cost == D("1.1")
    assert row.price_source == "override:openai/gpt-4o@2026-01-01"


def test_credit_balance_is_exact_when_ingest_commits(session):
    with session.begin():
        setup_credit_meter(session)
        ingest(session, [call("seed", input_tokens=1)])  # creates the customer
        grant_once(session, "acme", "tokens", D(100), at=T0, reason="welcome")
    with session.begin():
        ingest(session, [call("a", input_tokens=30_000, output_tokens=2_500)])
    with session.begin():
        assert balance(session, "acme", "tokens").balance == D("100") - D("0.001") - D("32.5")
    # Repeating the batch is a duplicate: no second consumption.
    with session.begin():
        ingest(session, [call("a", input_tokens=30_000, output_tokens=2_500)])
    assert balance(session, "acme", "tokens").balance == D("67.499")


def test_a_merged_record_appends_only_the_difference(session):
    with session.begin():
        setup_credit_meter(session)
        ingest(session, [call("m", input_tokens=10_000, output_tokens=None)])
    with session.begin():
        ingest(session, [call("m", input_tokens=10_000, output_tokens=5_000)])
    entries = list(session.scalars(select(CreditEntryRecord).order_by(CreditEntryRecord.id)))
    assert [e.credits for e in entries] == [D(10), D(5)]
    assert balance(session, "acme", "tokens").balance == D(-15)


def test_unlimited_pack_covers_consumption_and_purchased_credits(session):
    with session.begin():
        setup_credit_meter(session)
        ingest(session, [call("seed", input_tokens=0, customer="big")])
        enterprise = CreditPack("enterprise", "Enterprise", "tokens", None, D(999), valid_days=30)
        purchase_pack(session, "big", enterprise, at=datetime(2026, 11, 1, tzinfo=UTC))
    with session.begin():
        ingest(session, [call("u", customer="big", input_tokens=5_000_000)])
    state = balance(session, "big", "tokens", at=T0)
    assert state.unlimited and state.balance == 0
    consumption = session.scalars(
        select(CreditEntryRecord).where(CreditEntryRecord.kind == "consumption")
    ).all()
    assert [(e.amount, e.credits) for e in consumption] == [(D(0), D(5000))]
