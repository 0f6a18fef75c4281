"""Mode ``invoices``: a finalized spanledger invoice becomes a Stripe invoice, and is collected.

Each step commits on its own and only after Stripe accepted it, so a crash or an error leaves the
sync row at the last step Stripe confirmed, and the next run resumes there:

1. link the customer (:mod:`~spanledger.billing.stripe.customers`);
2. create the Stripe invoice (``auto_advance`` off until we finalize; pending items excluded) — or
   adopt the one an earlier, interrupted run created (found by its metadata on the customer's
   invoices, which Stripe lists consistently, so this holds even after idempotency keys expire);
3. add one invoice item per line, skipping lines Stripe already holds (listed by metadata);
4. check Stripe's subtotal equals ours to the minor unit, then finalize;
5. collect per ``SPANLEDGER_STRIPE_COLLECTION`` (``charge`` pays now).

Every write carries an idempotency key derived from our invoice and line ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.db import storage_errors
from spanledger.billing.invoices import InvoiceStatus
from spanledger.billing.models import (
    Customer,
    InvoiceLineRecord,
    InvoiceRecord,
    StripeCustomerLink,
    StripeInvoiceItem,
    StripeInvoiceSync,
)
from spanledger.billing.stripe.client import call_stripe
from spanledger.billing.stripe.customers import customer_mode, ensure_stripe_customer
from spanledger.billing.stripe.errors import StripeSyncError
from spanledger.billing.stripe.invoice_plan import (
    KEY_PREFIX,
    InvoiceLineSnapshot,
    InvoiceSnapshot,
    PlannedItem,
    idempotency_key,
    invoice_metadata,
    plan_items,
    to_minor_units,
)
from spanledger.billing.stripe.payments import PaymentOutcome, apply_payment
from spanledger.billing.stripe.settings import Collection, StripeMode, StripeSettings

__all__ = ["InvoiceSyncResult", "SyncState", "invoices_to_sync", "sync_invoice"]


class SyncState:
    PENDING = "pending"
    CREATED = "created"
    ITEMS_ADDED = "items_added"
    FINALIZED = "finalized"
    COLLECTED = "collected"


@dataclass
class InvoiceSyncResult:
    """What happened to one invoice (also what a dry run would send)."""

    invoice: str
    customer: str
    currency: str
    total: Decimal
    outcome: str
    stripe_invoice_id: str | None = None
    items_sent: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def invoices_to_sync(session: Session, settings: StripeSettings) -> list[int]:
    """Ids of finalized invoices of customers in mode ``invoices`` whose Stripe sync is not complete."""
    with storage_errors():
        rows = session.execute(
            select(InvoiceRecord.id, StripeCustomerLink, StripeInvoiceSync.sync_state)
            .outerjoin(StripeCustomerLink, StripeCustomerLink.customer_id == InvoiceRecord.customer_id)
            .outerjoin(StripeInvoiceSync, StripeInvoiceSync.invoice_id == InvoiceRecord.id)
            .where(InvoiceRecord.status == InvoiceStatus.FINALIZED.value)
            .order_by(InvoiceRecord.number_sequence, InvoiceRecord.id)
        ).all()
    return [
        invoice_id
        for invoice_id, link, state in rows
        if state != SyncState.COLLECTED and customer_mode(link, settings) is StripeMode.INVOICES
    ]


def _snapshot(session: Session, invoice_id: int) -> tuple[InvoiceSnapshot, Customer]:
    invoice = session.get(InvoiceRecord, invoice_id)
    assert invoice is not None and invoice.number is not None
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    lines = session.scalars(select(InvoiceLineRecord).where(InvoiceLineRecord.invoice_id == invoice_id)).all()
    snapshot = InvoiceSnapshot(
        id=invoice.id,
        number=invoice.number,
        customer_external_id=customer.external_id,
        period=invoice.period,
        currency=invoice.currency,
        total=invoice.total,
        lines=tuple(
            InvoiceLineSnapshot(
                line.id, line.position, line.description, line.quantity, line.unit_amount, line.amount
            )
            for line in lines
        ),
    )
    return snapshot, customer


def _metadata(stripe_object: Any) -> dict[str, Any]:
    """A Stripe object's metadata as a dict (a ``StripeObject`` is not a dict in stripe 16)."""
    metadata = getattr(stripe_object, "metadata", None)
    return metadata.to_dict() if metadata is not None else {}


def _describe(item: PlannedItem) -> dict[str, Any]:
    return {"line_id": item.line_id, "amount_minor": item.amount_minor, "description": item.description}


class _InvoiceSync:
    """One invoice's sync: each method is one step, committed in its own transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: stripe.StripeClient,
        settings: StripeSettings,
        invoice_id: int,
        result: InvoiceSyncResult,
        snapshot: InvoiceSnapshot,
    ) -> None:
        self.sessions, self.client, self.settings = sessions, client, settings
        self.invoice_id, self.result, self.snapshot = invoice_id, result, snapshot

    def call(self, request: Callable[[], Any]) -> Any:
        return call_stripe(request, self.settings)

    def _update(self, **values: Any) -> StripeInvoiceSync:
        with self.sessions() as session, session.begin(), storage_errors():
            sync = session.get(StripeInvoiceSync, self.invoice_id)
            assert sync is not None
            for key, value in values.items():
                setattr(sync, key, value)
            sync.updated_at = _now()
        return sync

    def run(self) -> None:
        with self.sessions() as session, session.begin(), storage_errors():
            sync = session.get(StripeInvoiceSync, self.invoice_id)
            if sync is None:
                sync = StripeInvoiceSync(
                    invoice_id=self.invoice_id, sync_state=SyncState.PENDING, attempts=0,
                    created_at=_now(), updated_at=_now(),
                )  # fmt: skip
                session.add(sync)
            sync.attempts += 1
            customer = session.get(Customer, session.get(InvoiceRecord, self.invoice_id).customer_id)  # type: ignore[union-attr]
            stripe_customer = ensure_stripe_customer(
                session, self.client, self.settings, customer
            ).stripe_customer_id
        assert stripe_customer is not None
        remote = self.ensure_invoice(sync, stripe_customer)
        self.result.stripe_invoice_id = remote.id
        if remote.status == "draft":
            self.add_items(remote.id)
            remote = self.finalize(remote.id)
        if self._state() != SyncState.FINALIZED and self._state() != SyncState.COLLECTED:
            self._update(
                sync_state=SyncState.FINALIZED, stripe_status=remote.status, synced_at=_now(), last_error=None
            )
        self.collect(remote)

    def _state(self) -> str:
        with self.sessions() as session:
            sync = session.get(StripeInvoiceSync, self.invoice_id)
            assert sync is not None
            return sync.sync_state

    def ensure_invoice(self, sync: StripeInvoiceSync, stripe_customer: str) -> stripe.Invoice:
        if sync.stripe_invoice_id:
            return self.call(lambda: self.client.v1.invoices.retrieve(sync.stripe_invoice_id))
        existing = self.call(
            lambda: self.client.v1.invoices.list(params={"customer": stripe_customer, "limit": 100})
        )
        ours = [
            inv for inv in existing.data
            if _metadata(inv).get(f"{KEY_PREFIX}_invoice_id") == str(self.invoice_id)
        ]  # fmt: skip
        if ours:
            remote = ours[0]
        else:
            params: stripe.InvoiceCreateParams = {
                "customer": stripe_customer,
                "currency": self.snapshot.currency.lower(),
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "description": f"Invoice {self.snapshot.number} for {self.snapshot.period}",
                "metadata": invoice_metadata(self.snapshot),
            }
            if self.settings.collection is Collection.SEND_INVOICE:
                params["collection_method"] = "send_invoice"
                params["days_until_due"] = self.settings.days_until_due
            else:
                params["collection_method"] = "charge_automatically"
            remote = self.call(
                lambda: self.client.v1.invoices.create(
                    params=params, options={"idempotency_key": idempotency_key(self.invoice_id, "create")}
                )
            )
        self._update(stripe_invoice_id=remote.id, sync_state=SyncState.CREATED, stripe_status=remote.status)
        return remote

    def add_items(self, stripe_invoice_id: str) -> None:
        planned = plan_items(self.snapshot)
        with self.sessions() as session, storage_errors():
            done = set(
                session.scalars(
                    select(StripeInvoiceItem.invoice_line_id).where(
                        StripeInvoiceItem.invoice_line_id.in_([item.line_id for item in planned])
                    )
                )
            )
        remaining = [item for item in planned if item.line_id not in done]
        held: dict[str, str] = {}
        if remaining:
            listed = self.call(
                lambda: self.client.v1.invoice_items.list(params={"invoice": stripe_invoice_id, "limit": 100})
            )
            held = {_metadata(item).get(f"{KEY_PREFIX}_invoice_line_id", ""): item.id for item in listed.data}
        for item in remaining:
            stripe_id = held.get(str(item.line_id))
            if stripe_id is None:
                created = self.call(
                    lambda item=item: self.client.v1.invoice_items.create(
                        params={
                            "customer": self._customer_of(stripe_invoice_id),
                            "invoice": stripe_invoice_id,
                            "currency": self.snapshot.currency.lower(),
                            "amount": item.amount_minor,
                            "description": item.description,
                            "metadata": item.metadata,
                        },
                        options={"idempotency_key": item.idempotency_key},
                    )
                )
                stripe_id = created.id
                self.result.items_sent += 1
            with self.sessions() as session, session.begin(), storage_errors():
                session.add(
                    StripeInvoiceItem(
                        invoice_line_id=item.line_id, stripe_invoice_item_id=stripe_id,
                        amount_minor=item.amount_minor, created_at=_now(),
                    )
                )  # fmt: skip
        self.result.items = [_describe(item) for item in planned]
        self._update(sync_state=SyncState.ITEMS_ADDED)

    def _customer_of(self, stripe_invoice_id: str) -> str:
        with self.sessions() as session:
            invoice = session.get(InvoiceRecord, self.invoice_id)
            link = session.get(StripeCustomerLink, invoice.customer_id)  # type: ignore[union-attr]
            assert link is not None and link.stripe_customer_id is not None
            return link.stripe_customer_id

    def finalize(self, stripe_invoice_id: str) -> stripe.Invoice:
        draft = self.call(lambda: self.client.v1.invoices.retrieve(stripe_invoice_id))
        expected = to_minor_units(self.snapshot.total, self.snapshot.currency)
        if draft.subtotal != expected:
            raise StripeSyncError(
                f"Stripe's draft {stripe_invoice_id} adds up to {draft.subtotal} minor units, "
                f"ours to {expected}; not finalizing — check the invoice items in Stripe",
                "mismatch",
            )
        return self.call(
            lambda: self.client.v1.invoices.finalize_invoice(
                stripe_invoice_id,
                params={"auto_advance": self.settings.collection is not Collection.NONE},
                options={"idempotency_key": idempotency_key(self.invoice_id, "finalize")},
            )
        )

    def collect(self, remote: stripe.Invoice) -> None:
        if remote.status == "paid":
            self._record(PaymentOutcome.PAID)
        elif remote.status == "void":
            self._record(PaymentOutcome.VOID)
        elif remote.status == "open" and self.settings.collection is Collection.CHARGE:
            try:
                paid = self.call(
                    lambda: self.client.v1.invoices.pay(
                        remote.id, options={"idempotency_key": idempotency_key(self.invoice_id, "pay")}
                    )
                )
            except StripeSyncError as exc:
                if exc.kind != "card_declined":
                    raise
                self._record(PaymentOutcome.FAILED)
                self._update(sync_state=SyncState.COLLECTED, last_error=str(exc)[:1024])
                self.result.outcome, self.result.error, self.result.error_kind = (
                    "payment_failed",
                    str(exc),
                    exc.kind,
                )
                return
            if paid.status == "paid":
                self._record(PaymentOutcome.PAID)
        self._update(sync_state=SyncState.COLLECTED, last_error=None)
        self.result.outcome = "charged" if self.settings.collection is Collection.CHARGE else "synced"

    def _record(self, outcome: PaymentOutcome) -> None:
        with self.sessions() as session, session.begin():
            invoice = session.get(InvoiceRecord, self.invoice_id)
            assert invoice is not None
            apply_payment(
                session,
                invoice,
                session.get(StripeInvoiceSync, self.invoice_id),
                outcome,
                event_at=None,
                now=_now(),
            )


def sync_invoice(
    sessions: sessionmaker[Session],
    client: stripe.StripeClient | None,
    settings: StripeSettings,
    invoice_id: int,
    *,
    dry_run: bool = False,
) -> InvoiceSyncResult:
    """Sync one finalized invoice; Stripe errors are reported in the result, never raised."""
    with sessions() as session, storage_errors():
        snapshot, customer = _snapshot(session, invoice_id)
    result = InvoiceSyncResult(
        invoice=snapshot.number, customer=customer.external_id, currency=snapshot.currency,
        total=snapshot.total, outcome="would_send" if dry_run else "failed",
    )  # fmt: skip
    if dry_run:
        result.items = [_describe(item) for item in plan_items(snapshot)]
        return result
    assert client is not None
    try:
        _InvoiceSync(sessions, client, settings, invoice_id, result, snapshot).run()
    except StripeSyncError as exc:
        result.outcome, result.error, result.error_kind = "failed", str(exc), exc.kind
        with sessions() as session, session.begin(), storage_errors():
            sync = session.get(StripeInvoiceSync, invoice_id)
            if sync is not None:
                sync.last_error = str(exc)[:1024]
                sync.updated_at = _now()
    return result
