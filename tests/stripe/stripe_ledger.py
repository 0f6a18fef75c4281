"""Ledger and Stripe-payload helpers shared by the Stripe tests (a uniquely named module: conftest
modules all share the name ``conftest`` and cannot be imported from)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from spanledger.billing.customers import create_customer
from spanledger.billing.models import Customer, EventRecord, InvoiceLineRecord, InvoiceRecord

WEBHOOK_SECRET = "whsec_test_spanledger"


def add_customer(sessions, external_id: str, **values: Any) -> int:
    with sessions() as session, session.begin():
        return create_customer(session, external_id, **values).id


def add_invoice(
    sessions,
    customer_id: int,
    lines: list[tuple[str, str, str | None, str]],
    *,
    sequence: int,
    period: str = "2026-10",
    currency: str = "USD",
    status: str = "finalized",
) -> int:
    """A finalized invoice with ``lines`` of (description, quantity, unit amount, amount)."""
    now = datetime.now(UTC)
    total = sum((Decimal(amount) for *_, amount in lines), Decimal(0))
    with sessions() as session, session.begin():
        invoice = InvoiceRecord(
            customer_id=customer_id, subscription_id=None, period=period,
            period_start=datetime(2026, 10, 1, tzinfo=UTC), period_end=datetime(2026, 11, 1, tzinfo=UTC),
            currency=currency, status="draft", number=None, number_sequence=None,
            subtotal=total, total=total, upstream_cost=None, margin=None, unknown_cost_events=0,
            created_at=now, updated_at=now, finalized_at=None,
        )  # fmt: skip
        session.add(invoice)
        session.flush()
        for position, (description, quantity, unit, amount) in enumerate(lines):
            session.add(
                InvoiceLineRecord(
                    invoice_id=invoice.id, position=position, kind="usage", description=description,
                    quantity=Decimal(quantity), unit_amount=None if unit is None else Decimal(unit),
                    exact_amount=amount, amount=Decimal(amount), details={},
                )
            )  # fmt: skip
        session.flush()
        # Lines first, then finalize: a finalized invoice's lines can no longer change (invoices.guard).
        if status != "draft":
            invoice.status, invoice.number = status, f"{currency}-{sequence:06d}"
            invoice.number_sequence, invoice.finalized_at = sequence, now
        return invoice.id


def add_events(sessions, customer_id: int, events: list[tuple[datetime, int]], *, prefix: str = "e") -> None:
    """Usage events (occurred_at, output_tokens) for one customer."""
    with sessions() as session, session.begin():
        start = session.query(EventRecord).count()
        for index, (occurred_at, output_tokens) in enumerate(events):
            session.add(
                EventRecord(
                    dedupe_key=f"{prefix}-{customer_id}-{start + index}", event_name="llm.call",
                    customer_id=customer_id, occurred_at=occurred_at, received_at=occurred_at,
                    provider="openai", request_model="gpt-4o", input_tokens=10, output_tokens=output_tokens,
                    event_metadata={},
                )
            )  # fmt: skip


def invoice_status(sessions, invoice_id: int) -> str:
    with sessions() as session:
        invoice = session.get(InvoiceRecord, invoice_id)
        assert invoice is not None
        return invoice.status


def customer_row(sessions, customer_id: int) -> Customer:
    with sessions() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer


def signed(
    payload: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    """A webhook body and its ``Stripe-Signature`` header, signed as Stripe signs them."""
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={mac}"


def invoice_event(event_id: str, event_type: str, stripe_invoice_id: str, *, created: int, status: str,
                  metadata: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": created,
        "type": event_type,
        "livemode": False,
        "data": {
            "object": {
                "id": stripe_invoice_id,
                "object": "invoice",
                "status": status,
                "metadata": metadata or {},
            }
        },
    }
