import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from stripe_ledger import WEBHOOK_SECRET, add_customer, add_invoice, invoice_event, invoice_status, signed

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.models import StripeInvoiceSync, StripeWebhookEvent
from spanledger.billing.stripe import Collection, StripeSettings, run_sync, webhook_routes


@pytest.fixture
def synced(sessions, fake_stripe):
    """An invoice sent to Stripe and finalized but not charged (payment arrives by webhook)."""
    settings = StripeSettings(
        api_key="sk_test_fake", api_base=fake_stripe.url, collection=Collection.NONE, backoff_seconds=0
    )
    customer_id = add_customer(sessions, "acme")
    invoice_id = add_invoice(sessions, customer_id, [("usage", "10", "1.5", "15.00")], sequence=1)
    [result] = run_sync(sessions, settings).invoices
    assert result.outcome == "synced"
    return invoice_id, result.stripe_invoice_id


@pytest.fixture
def client(sessions):
    app = Starlette(routes=webhook_routes(sessions, WEBHOOK_SECRET))
    with TestClient(app) as test_client:
        yield test_client


def _post(client, event, **sign):
    body, header = signed(event, **sign)
    return client.post("/stripe/webhook", content=body, headers={"Stripe-Signature": header})


def _payment_status(sessions, invoice_id):
    with sessions() as session:
        return session.get(StripeInvoiceSync, invoice_id).payment_status


def test_invoice_paid_marks_our_invoice_paid(sessions, synced, client):
    invoice_id, stripe_id = synced
    now = int(time.time())
    response = _post(client, invoice_event("evt_1", "invoice.paid", stripe_id, created=now, status="paid"))
    assert response.status_code == 200 and response.json()["outcome"] == "marked paid"
    assert invoice_status(sessions, invoice_id) == "paid"
    assert _payment_status(sessions, invoice_id) == "paid"


def test_a_replayed_event_changes_nothing(sessions, synced, client):
    _, stripe_id = synced
    event = invoice_event(
        "evt_1", "invoice.payment_failed", stripe_id, created=int(time.time()), status="open"
    )
    assert _post(client, event).json()["outcome"] == "marked payment failed"
    assert _post(client, event).json()["outcome"] == "replay"
    with sessions() as session:
        assert session.query(StripeWebhookEvent).count() == 1


def test_a_late_payment_failed_after_paid_does_not_unpay(sessions, synced, client):
    invoice_id, stripe_id = synced
    now = int(time.time())
    _post(client, invoice_event("evt_paid", "invoice.paid", stripe_id, created=now, status="paid"))
    late = invoice_event("evt_failed", "invoice.payment_failed", stripe_id, created=now - 60, status="open")
    assert _post(client, late).status_code == 200
    assert invoice_status(sessions, invoice_id) == "paid" and _payment_status(sessions, invoice_id) == "paid"
    voided = invoice_event("evt_void", "invoice.voided", stripe_id, created=now + 60, status="void")
    assert _post(client, voided).json()["outcome"].startswith("ignored")
    assert invoice_status(sessions, invoice_id) == "paid"


def test_failed_then_paid_ends_paid_and_an_older_failure_is_ignored(sessions, synced, client):
    invoice_id, stripe_id = synced
    now = int(time.time())
    _post(client, invoice_event("evt_f2", "invoice.payment_failed", stripe_id, created=now, status="open"))
    assert _payment_status(sessions, invoice_id) == "failed"
    _post(client, invoice_event("evt_p", "invoice.paid", stripe_id, created=now + 10, status="paid"))
    assert invoice_status(sessions, invoice_id) == "paid"


def test_voided_marks_void(sessions, synced, client):
    invoice_id, stripe_id = synced
    _post(
        client, invoice_event("evt_v", "invoice.voided", stripe_id, created=int(time.time()), status="void")
    )
    assert invoice_status(sessions, invoice_id) == "void"


def test_matched_by_metadata_when_the_stripe_id_is_unknown(sessions, synced, client):
    invoice_id, _ = synced
    event = invoice_event(
        "evt_m", "invoice.paid", "in_other", created=int(time.time()), status="paid",
        metadata={"spanledger_invoice_id": str(invoice_id)},
    )  # fmt: skip
    assert _post(client, event).status_code == 200
    assert invoice_status(sessions, invoice_id) == "paid"


def test_unrelated_events_are_acknowledged_and_ignored(sessions, synced, client):
    invoice_id, _ = synced
    event = invoice_event("evt_x", "invoice.paid", "in_unknown", created=int(time.time()), status="paid")
    assert _post(client, event).json()["outcome"] == "ignored: not a spanledger invoice"
    other = {**event, "id": "evt_y", "type": "customer.created"}
    assert _post(client, other).json()["outcome"] == "ignored: not a payment event"
    assert invoice_status(sessions, invoice_id) == "finalized"


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "no_header", "modified_body", "too_old"],
)
def test_bad_signature_is_rejected_and_changes_nothing(sessions, synced, client, tamper):
    invoice_id, stripe_id = synced
    event = invoice_event("evt_bad", "invoice.paid", stripe_id, created=int(time.time()), status="paid")
    if tamper == "wrong_secret":
        body, header = signed(event, secret="whsec_wrong")
    elif tamper == "too_old":
        body, header = signed(event, timestamp=int(time.time()) - 3600)
    else:
        body, header = signed(event)
    headers = {} if tamper == "no_header" else {"Stripe-Signature": header}
    if tamper == "modified_body":
        body = body.replace(b"invoice.paid", b"invoice.voided")
    response = client.post("/stripe/webhook", content=body, headers=headers)
    assert response.status_code == 400
    assert invoice_status(sessions, invoice_id) == "finalized"
    with sessions() as session:
        assert session.query(StripeWebhookEvent).count() == 0


def test_webhook_routes_need_a_secret(sessions):
    with pytest.raises(ConfigurationError, match="SPANLEDGER_STRIPE_WEBHOOK_SECRET"):
        webhook_routes(sessions, None)
