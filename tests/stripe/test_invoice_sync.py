from decimal import Decimal

import pytest
from stripe_ledger import add_customer, add_invoice, invoice_status

from spanledger.billing.models import StripeCustomerLink, StripeInvoiceItem, StripeInvoiceSync
from spanledger.billing.stripe import Collection, StripeSettings, run_sync

LINES = [
    ("gpt-4o output tokens", "1500000", "0.00001", "15.00"),
    ("Base fee", "1", "20", "20.00"),
    ("credits applied", "5", None, "0.00"),
]


def _setup(sessions, external_id="acme", sequence=1):
    customer_id = add_customer(sessions, external_id, name="Acme", email="billing@acme.test")
    return customer_id, add_invoice(sessions, customer_id, LINES, sequence=sequence)


def test_a_finalized_invoice_becomes_one_stripe_invoice_with_one_item_per_line(
    sessions, fake_stripe, settings
):
    _, invoice_id = _setup(sessions)
    report = run_sync(sessions, settings)
    [result] = report.invoices
    assert result.outcome == "charged" and result.error is None and result.items_sent == 3
    [stripe_invoice] = fake_stripe.state.invoices.values()
    assert stripe_invoice["status"] == "paid"
    assert stripe_invoice["metadata"]["spanledger_invoice_number"] == "USD-000001"
    items = sorted(fake_stripe.state.invoice_items.values(), key=lambda i: i["id"])
    assert [i["amount"] for i in items] == [1500, 2000, 0]
    assert items[0]["description"] == "gpt-4o output tokens: 1500000 × 0.00001 USD"
    assert items[2]["description"] == "credits applied (quantity 5)"
    [customer] = fake_stripe.state.customers.values()
    assert (
        customer["metadata"] == {"spanledger_customer_id": "acme"}
        and customer["email"] == "billing@acme.test"
    )
    # Every write carries a key derived from our ids.
    keys = {r.idempotency_key for r in fake_stripe.writes()}
    assert (
        f"spanledger-invoice-{invoice_id}-create" in keys and f"spanledger-invoice-{invoice_id}-pay" in keys
    )
    assert invoice_status(sessions, invoice_id) == "paid"
    with sessions() as session:
        sync = session.get(StripeInvoiceSync, invoice_id)
        assert sync.sync_state == "collected" and sync.payment_status == "paid" and sync.synced_at is not None
        assert sync.stripe_invoice_id == stripe_invoice["id"]
        assert session.query(StripeInvoiceItem).count() == 3


def test_sync_twice_sends_each_invoice_once(sessions, fake_stripe, settings):
    _setup(sessions)
    run_sync(sessions, settings)
    writes = len(fake_stripe.writes())
    second = run_sync(sessions, settings)
    assert second.invoices == [] and len(fake_stripe.writes()) == writes
    assert len(fake_stripe.state.invoices) == 1 and len(fake_stripe.state.invoice_items) == 3


def test_a_customer_is_matched_by_metadata_instead_of_created_twice(sessions, fake_stripe, settings):
    fake_stripe.state.customers["cus_existing"] = {
        "id": "cus_existing", "object": "customer", "metadata": {"spanledger_customer_id": "acme"},
    }  # fmt: skip
    customer_id, _ = _setup(sessions)
    run_sync(sessions, settings)
    assert fake_stripe.writes("/v1/customers") == []
    with sessions() as session:
        assert session.get(StripeCustomerLink, customer_id).stripe_customer_id == "cus_existing"


@pytest.mark.parametrize("kind", ["server", "drop"])
def test_crash_mid_sync_then_rerun_leaves_exactly_one_invoice_with_all_lines(sessions, fake_stripe, kind):
    settings = StripeSettings(
        api_key="sk_test_fake", api_base=fake_stripe.url, network_retries=0, backoff_seconds=0
    )
    _, invoice_id = _setup(sessions)
    fake_stripe.inject("POST", r"^/v1/invoiceitems$", kind, skip=1)  # the second line fails
    first = run_sync(sessions, settings)
    assert first.invoices[0].outcome == "failed" and first.invoices[0].error_kind in ("api", "network")
    assert first.failed
    assert invoice_status(sessions, invoice_id) == "finalized"
    with sessions() as session:
        sync = session.get(StripeInvoiceSync, invoice_id)
        assert sync.sync_state == "created" and sync.synced_at is None and sync.last_error
    second = run_sync(sessions, settings)
    assert second.invoices[0].outcome == "charged"
    assert len(fake_stripe.state.invoices) == 1
    [stripe_invoice] = fake_stripe.state.invoices.values()
    amounts = sorted(i["amount"] for i in fake_stripe.state.invoice_items.values())
    assert amounts == [0, 1500, 2000] and stripe_invoice["status"] == "paid"


def test_a_lost_response_is_replayed_by_idempotency_key_not_billed_twice(sessions, fake_stripe, settings):
    _setup(sessions)
    # Stripe creates the item, then the connection drops; the SDK retries with the same key.
    fake_stripe.inject("POST", r"^/v1/invoiceitems$", "drop_after")
    report = run_sync(sessions, settings)
    assert report.invoices[0].outcome == "charged"
    assert len(fake_stripe.state.invoice_items) == 3
    assert any(r.replayed for r in fake_stripe.writes("/v1/invoiceitems"))


def test_crash_after_stripe_created_the_invoice_but_before_we_stored_it(sessions, fake_stripe):
    settings = StripeSettings(
        api_key="sk_test_fake", api_base=fake_stripe.url, network_retries=0, backoff_seconds=0
    )
    _, invoice_id = _setup(sessions)
    fake_stripe.inject("POST", r"^/v1/invoices$", "drop_after")
    assert run_sync(sessions, settings).invoices[0].outcome == "failed"
    with sessions() as session:
        assert session.get(StripeInvoiceSync, invoice_id).stripe_invoice_id is None
    fake_stripe._idempotency.clear()  # as if the 24-hour idempotency window had passed
    assert run_sync(sessions, settings).invoices[0].outcome == "charged"
    assert len(fake_stripe.state.invoices) == 1 and len(fake_stripe.state.invoice_items) == 3


def test_rate_limits_are_retried_with_backoff(sessions, fake_stripe, settings):
    _setup(sessions)
    fake_stripe.inject("POST", r"^/v1/invoiceitems$", "rate_limit", times=2)
    report = run_sync(sessions, settings)
    assert report.invoices[0].outcome == "charged"
    assert sum(1 for r in fake_stripe.writes("/v1/invoiceitems") if r.status == 429) == 2


def test_rate_limit_retries_are_bounded(sessions, fake_stripe):
    settings = StripeSettings(
        api_key="sk_test_fake",
        api_base=fake_stripe.url,
        network_retries=0,
        backoff_seconds=0,
        rate_limit_retries=2,
    )
    _, invoice_id = _setup(sessions)
    fake_stripe.inject("POST", r"^/v1/invoices$", "rate_limit", times=10)
    [result] = run_sync(sessions, settings).invoices
    assert result.outcome == "failed" and result.error_kind == "rate_limited"
    assert len(fake_stripe.writes("/v1/invoices")) == 3
    with sessions() as session:
        assert session.get(StripeInvoiceSync, invoice_id).stripe_invoice_id is None


def test_a_declined_card_is_reported_per_invoice_and_the_invoice_stays_open(sessions, fake_stripe, settings):
    _, declined = _setup(sessions, "acme", 1)
    _, fine = _setup(sessions, "globex", 2)
    fake_stripe.inject("POST", r"^/v1/invoices/in_\w+/pay$", "card_declined")
    report = run_sync(sessions, settings)
    outcomes = {r.customer: (r.outcome, r.error_kind) for r in report.invoices}
    assert outcomes == {"acme": ("payment_failed", "card_declined"), "globex": ("charged", None)}
    assert not report.failed
    assert invoice_status(sessions, declined) == "finalized" and invoice_status(sessions, fine) == "paid"
    with sessions() as session:
        assert session.get(StripeInvoiceSync, declined).payment_status == "failed"


def test_dry_run_sends_nothing_and_needs_no_api_key(sessions, fake_stripe):
    _, invoice_id = _setup(sessions)
    report = run_sync(sessions, StripeSettings(), dry_run=True)
    [result] = report.invoices
    assert result.outcome == "would_send" and [i["amount_minor"] for i in result.items] == [1500, 2000, 0]
    assert fake_stripe.requests == []
    with sessions() as session:
        assert session.get(StripeInvoiceSync, invoice_id) is None


def test_send_invoice_collection_does_not_charge(sessions, fake_stripe):
    settings = StripeSettings(
        api_key="sk_test_fake",
        api_base=fake_stripe.url,
        collection=Collection.SEND_INVOICE,
        backoff_seconds=0,
    )
    _, invoice_id = _setup(sessions)
    assert run_sync(sessions, settings).invoices[0].outcome == "synced"
    [stripe_invoice] = fake_stripe.state.invoices.values()
    assert stripe_invoice["collection_method"] == "send_invoice" and stripe_invoice["status"] == "open"
    assert fake_stripe.writes("/v1/invoices/" + stripe_invoice["id"] + "/pay") == []
    assert invoice_status(sessions, invoice_id) == "finalized"


def test_drafts_and_customers_in_meters_mode_are_not_sent(sessions, fake_stripe, settings):
    customer_id = add_customer(sessions, "acme")
    add_invoice(sessions, customer_id, LINES, sequence=1, status="draft")
    assert run_sync(sessions, settings).invoices == []
    from spanledger.billing.stripe import StripeMode, link_customer

    other = add_customer(sessions, "globex")
    add_invoice(sessions, other, LINES, sequence=2)
    with sessions() as session, session.begin():
        link_customer(session, "globex", mode=StripeMode.METERS)
    assert run_sync(sessions, settings).invoices == [] and fake_stripe.requests == []


def test_amounts_are_sent_in_minor_units_of_the_currency(sessions, fake_stripe, settings):
    customer_id = add_customer(sessions, "tokyo", currency="JPY")
    add_invoice(sessions, customer_id, [("usage", "3", "1000", "3000")], sequence=1, currency="JPY")
    assert run_sync(sessions, settings).invoices[0].outcome == "charged"
    [item] = fake_stripe.state.invoice_items.values()
    assert item["amount"] == 3000 and item["currency"] == "jpy"
    assert Decimal(3000) == Decimal("3000")
