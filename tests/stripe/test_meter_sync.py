from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from stripe_ledger import add_customer, add_events

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.meters.definition import MeterDefinition
from spanledger.billing.meters.service import create_meter
from spanledger.billing.models import StripeUsageMark
from spanledger.billing.stripe import StripeMode, StripeSettings, UsagePoint, aggregate_usage, run_sync

NOW = datetime.now(UTC).replace(microsecond=0)
BASE = NOW - timedelta(hours=2) - timedelta(seconds=NOW.timestamp() % 300)


@pytest.fixture
def meter_settings(fake_stripe):
    return StripeSettings(
        api_key="sk_test_fake", api_base=fake_stripe.url, default_mode=StripeMode.METERS,
        meters={"output-tokens": "llm_output_tokens"}, meter_interval_seconds=300, backoff_seconds=0,
        network_retries=0,
    )  # fmt: skip


@pytest.fixture
def meter(sessions):
    with sessions() as session, session.begin():
        create_meter(
            session, MeterDefinition.parse("output-tokens", "sum", "output_tokens", event_name="llm.call")
        )


def _values(fake):
    return sorted((e["payload"]["value"], e["timestamp"]) for e in fake.state.meter_events.values())


def test_usage_is_aggregated_per_customer_and_interval(sessions, fake_stripe, meter_settings, meter):
    acme = add_customer(sessions, "acme")
    globex = add_customer(sessions, "globex")
    # 50 calls in the first interval and 2 in the next for acme; 1 call for globex.
    add_events(sessions, acme, [(BASE + timedelta(seconds=i), 100) for i in range(50)])
    add_events(sessions, acme, [(BASE + timedelta(seconds=301), 7), (BASE + timedelta(seconds=599), 3)])
    add_events(sessions, globex, [(BASE + timedelta(seconds=10), 42)])
    [result] = run_sync(sessions, meter_settings).meters
    assert result.outcome == "sent" and result.usage_events == 53 and result.meter_events_sent == 3
    start = int(BASE.timestamp())
    assert _values(fake_stripe) == sorted([("5000", start), ("10", start + 300), ("42", start)])
    sent = fake_stripe.writes("/v1/billing/meter_events")
    assert len(sent) == 3 and all(r.params["identifier"] == r.idempotency_key for r in sent)
    customers = {
        c["metadata"]["spanledger_customer_id"]: c["id"] for c in fake_stripe.state.customers.values()
    }
    assert {r.params["payload"]["stripe_customer_id"] for r in sent} == set(customers.values())


def test_high_water_mark_means_a_rerun_sends_nothing_twice(sessions, fake_stripe, meter_settings, meter):
    acme = add_customer(sessions, "acme")
    add_events(sessions, acme, [(BASE, 5), (BASE + timedelta(seconds=1), 6)])
    run_sync(sessions, meter_settings)
    assert run_sync(sessions, meter_settings).meters[0].meter_events_sent == 0
    assert len(fake_stripe.writes("/v1/billing/meter_events")) == 1
    add_events(sessions, acme, [(BASE + timedelta(seconds=2), 4)], prefix="late")
    [result] = run_sync(sessions, meter_settings).meters
    assert result.meter_events_sent == 1 and result.usage_events == 1
    assert _values(fake_stripe) == sorted([("11", int(BASE.timestamp())), ("4", int(BASE.timestamp()))])
    with sessions() as session:
        mark = session.get(StripeUsageMark, "llm_output_tokens")
        assert mark.last_sequence == 3 and mark.pending_sequence is None


def test_an_interrupted_batch_resumes_without_double_counting(sessions, fake_stripe, meter_settings, meter):
    customers = [add_customer(sessions, name) for name in ("a", "b", "c")]
    for customer_id in customers:
        add_events(sessions, customer_id, [(BASE, 10)])
    fake_stripe.inject("POST", r"^/v1/billing/meter_events$", "server", skip=1)
    [first] = run_sync(sessions, meter_settings).meters
    assert first.outcome == "failed" and first.meter_events_sent == 1
    add_events(sessions, customers[0], [(BASE, 1000)], prefix="new")  # arrives between the runs
    [second] = run_sync(sessions, meter_settings).meters
    assert second.outcome == "sent" and second.meter_events_sent == 2 and second.upto_sequence == 3
    assert sorted(e["payload"]["value"] for e in fake_stripe.state.meter_events.values()) == [
        "10",
        "10",
        "10",
    ]
    [third] = run_sync(sessions, meter_settings).meters
    assert third.meter_events_sent == 1 and third.after_sequence == 3


def test_dry_run_sends_nothing_and_moves_no_mark(sessions, fake_stripe, meter_settings, meter):
    acme = add_customer(sessions, "acme")
    add_events(sessions, acme, [(BASE, 5)])
    [result] = run_sync(sessions, meter_settings, dry_run=True).meters
    assert result.outcome == "would_send" and [e["value"] for e in result.meter_events] == ["5"]
    assert fake_stripe.requests == []
    with sessions() as session:
        assert session.get(StripeUsageMark, "llm_output_tokens") is None


def test_customers_billed_by_invoices_are_not_pushed(sessions, fake_stripe, meter_settings, meter):
    from spanledger.billing.stripe import link_customer

    acme = add_customer(sessions, "acme")
    add_events(sessions, acme, [(BASE, 5)])
    with sessions() as session, session.begin():
        link_customer(session, "acme", mode=StripeMode.INVOICES)
    [result] = run_sync(sessions, meter_settings).meters
    assert result.meter_events_sent == 0 and result.upto_sequence == 1 and fake_stripe.requests == []


def test_only_sum_and_count_meters_can_be_pushed(sessions, fake_stripe, meter_settings):
    with sessions() as session, session.begin():
        create_meter(
            session, MeterDefinition.parse("output-tokens", "max", "output_tokens", event_name="llm.call")
        )
    acme = add_customer(sessions, "acme")
    add_events(sessions, acme, [(BASE, 5)])
    with pytest.raises(ConfigurationError, match="only sum and count"):
        run_sync(sessions, meter_settings)


def test_aggregate_usage_is_pure_and_stable():
    points = [
        UsagePoint(1, BASE, Decimal("0.5")),
        UsagePoint(1, BASE + timedelta(seconds=5), Decimal("0.25")),
    ]
    first = aggregate_usage(
        points, stripe_event_name="x", interval_seconds=60, after_sequence=0, upto_sequence=2
    )
    again = aggregate_usage(
        points, stripe_event_name="x", interval_seconds=60, after_sequence=0, upto_sequence=2
    )
    assert first == again and first[0].value_text == "0.75" and len(first[0].identifier) <= 100
    other_range = aggregate_usage(
        points, stripe_event_name="x", interval_seconds=60, after_sequence=0, upto_sequence=3
    )
    assert other_range[0].identifier != first[0].identifier
    zero = [UsagePoint(1, BASE, Decimal(0))]
    assert (
        aggregate_usage(zero, stripe_event_name="x", interval_seconds=60, after_sequence=0, upto_sequence=1)
        == []
    )
