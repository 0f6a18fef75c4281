"""Issue 7's "done when": usage events → ``invoices run`` → finalize → Stripe sync against the fake
Stripe API → the ``invoice.paid`` webhook marks the invoice paid → the customer portal shows the paid
invoice, consistent to the cent with the ledger and with what Stripe was asked to collect."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient
from typer.testing import CliRunner

from spanledger.billing.cli import app as cli
from spanledger.billing.db import make_session_factory
from spanledger.billing.invoices import invoice_lines
from spanledger.billing.models import InvoiceRecord
from spanledger.billing.portal import portal_routes, portal_url, require_secret_key
from spanledger.billing.stripe import Collection, StripeSettings, run_sync, webhook_routes

sys.path.insert(0, str(Path(__file__).parent / "stripe"))
sys.path.insert(0, str(Path(__file__).parent / "portal"))
from fake_stripe import FakeStripe
from portal_ledger import CATALOG, NOW, OCT, call

SECRET = "scenario-secret-key-0123456789"
WEBHOOK_SECRET = "whsec_scenario"


def _cli(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--database-url", url, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _signed(payload: dict) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={mac}"


def _events_file(tmp_path: Path) -> Path:
    lines = []
    for day in range(0, 31, 2):
        event = call(f"scenario-{day}", "acme", OCT + timedelta(days=day, hours=8), 7_000 + 1_237 * day)
        lines.append(
            json.dumps(
                {
                    "dedupe_key": event.dedupe_key,
                    "occurred_at": event.occurred_at.isoformat(),
                    "customer_external_id": "acme",
                    "provider": "openai",
                    "request_model": "gpt-4o",
                    "response_model": "gpt-4o",
                    "input_tokens": event.input_tokens,
                    "output_tokens": event.output_tokens,
                }
            )
        )
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_events_to_a_paid_invoice_on_the_portal(tmp_path, database_url, engine):
    import yaml

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(CATALOG))
    _cli(database_url, "apply", str(catalog))
    _cli(database_url, "customers", "create", "acme", "--name", "Acme Inc.", "--email", "billing@acme.test")
    _cli(database_url, "subscriptions", "create", "acme", "writer", "--start", OCT.isoformat())
    _cli(database_url, "events", "import", str(_events_file(tmp_path)))
    _cli(database_url, "invoices", "run", "--period", "2026-10")
    sessions = make_session_factory(engine)
    with sessions() as session:
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-10"))
        invoice_id = invoice.id
    _cli(database_url, "invoices", "finalize", str(invoice_id))

    fake = FakeStripe().start()
    try:
        settings = StripeSettings(api_key="sk_test_fake", api_base=fake.url, collection=Collection.NONE,
                                  backoff_seconds=0, webhook_secret=WEBHOOK_SECRET)  # fmt: skip
        [synced] = run_sync(sessions, settings).invoices
        assert synced.outcome == "synced" and synced.error is None
        [stripe_invoice] = fake.state.invoices.values()
        stripe_cents = sum(item["amount"] for item in fake.state.invoice_items.values())
    finally:
        fake.stop()

    # What `spanledger serve` mounts: the webhook beside the portal.
    routes = [
        *webhook_routes(sessions, WEBHOOK_SECRET),
        *portal_routes(sessions, secret_key=SECRET, clock=lambda: NOW),
    ]
    with TestClient(Starlette(routes=routes)) as client:
        paid = {
            "id": "evt_paid",
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": int(time.time()),
            "type": "invoice.paid",
            "livemode": False,
            "data": {
                "object": {"id": stripe_invoice["id"], "object": "invoice", "status": "paid", "metadata": {}}
            },
        }
        body, signature = _signed(paid)
        response = client.post("/stripe/webhook", content=body, headers={"Stripe-Signature": signature})
        assert response.status_code == 200 and response.json()["outcome"] == "marked paid"
        page = client.get(portal_url("", require_secret_key(SECRET), "acme", NOW + timedelta(days=7))).text

    with sessions() as session:
        invoice = session.get(InvoiceRecord, invoice_id)
        lines = invoice_lines(session, invoice)
    assert invoice.status == "paid" and invoice.paid_at is not None
    # Consistent to the cent: the ledger's total, the sum of its lines, Stripe's items, the portal.
    total = invoice.total.quantize(Decimal("0.01"))
    assert sum(line.amount for line in lines) == invoice.total
    assert Decimal(stripe_cents) / 100 == total > 0
    block = page.split(f'data-number="{invoice.number}"')[1].split("</table>")[0]
    assert re.search(r'data-testid="invoice-status">paid<', block)
    assert f'data-testid="invoice-total">{total} USD<' in block
    for line in lines:
        assert (
            f"{html.escape(line.description)}" in block
            and f"{line.amount.quantize(Decimal('0.01'))} USD" in block
        )
