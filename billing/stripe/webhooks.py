"""Stripe webhooks: payment outcomes flow back into our invoices.

``POST /stripe/webhook`` (mounted on ``spanledger serve``) verifies the ``Stripe-Signature`` header
with the endpoint's signing secret (:func:`stripe.Webhook.construct_event`); a missing or bad
signature, or a body that is not a Stripe event, gets 400 and changes nothing. A verified event is
applied in one transaction together with the record of its id, so a replayed event is a no-op, and
the ordering rules of :mod:`~spanledger.billing.stripe.payments` make out-of-order delivery harmless.

Handled: ``invoice.paid`` and ``invoice.payment_succeeded`` (paid), ``invoice.payment_failed``
(payment failed), ``invoice.voided`` (void). Other events are acknowledged and recorded as ignored.
Our invoice is found through the stored Stripe invoice id, else the ``spanledger_invoice_id``
metadata spanledger set on the Stripe invoice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError, SpanledgerError
from spanledger.billing.models import InvoiceRecord, StripeInvoiceSync, StripeWebhookEvent
from spanledger.billing.stripe.environment_variables import SPANLEDGER_STRIPE_WEBHOOK_SECRET
from spanledger.billing.stripe.invoice_plan import KEY_PREFIX
from spanledger.billing.stripe.payments import PaymentOutcome, apply_payment

__all__ = ["WEBHOOK_PATH", "apply_event", "webhook_routes"]

WEBHOOK_PATH = "/stripe/webhook"

_log = logging.getLogger(__name__)

_OUTCOMES: dict[str, PaymentOutcome] = {
    "invoice.paid": PaymentOutcome.PAID,
    "invoice.payment_succeeded": PaymentOutcome.PAID,
    "invoice.payment_failed": PaymentOutcome.FAILED,
    "invoice.voided": PaymentOutcome.VOID,
}


def _find_invoice(
    session: Session, stripe_invoice: dict[str, Any]
) -> tuple[InvoiceRecord | None, StripeInvoiceSync | None]:
    sync = session.scalar(
        select(StripeInvoiceSync).where(StripeInvoiceSync.stripe_invoice_id == stripe_invoice.get("id"))
    )
    if sync is not None:
        return session.get(InvoiceRecord, sync.invoice_id), sync
    ours = (stripe_invoice.get("metadata") or {}).get(f"{KEY_PREFIX}_invoice_id")
    if ours is None or not str(ours).isdigit():
        return None, None
    return session.get(InvoiceRecord, int(ours)), session.get(StripeInvoiceSync, int(ours))


def apply_event(session: Session, event: dict[str, Any], *, now: datetime | None = None) -> str:
    """Apply one verified Stripe event (as a plain dict) and record it; returns what happened.

    The caller owns the transaction. A replay (an event id already recorded) returns ``"replay"``.
    """
    now = now or datetime.now(UTC)
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    if not event_id:
        raise ValueError("a Stripe event has an id")
    with storage_errors():
        if session.get(StripeWebhookEvent, event_id) is not None:
            return "replay"
        outcome = _OUTCOMES.get(event_type)
        result = "ignored: not a payment event"
        if outcome is not None:
            stripe_invoice = (event.get("data") or {}).get("object") or {}
            invoice, sync = _find_invoice(session, stripe_invoice)
            if invoice is None:
                result = "ignored: not a spanledger invoice"
            else:
                created = event.get("created")
                event_at = datetime.fromtimestamp(int(created), UTC) if created is not None else None
                if sync is not None and stripe_invoice.get("status"):
                    sync.stripe_status = str(stripe_invoice["status"])
                result = apply_payment(session, invoice, sync, outcome, event_at=event_at, now=now).reason
        session.add(
            StripeWebhookEvent(
                event_id=event_id, event_type=event_type[:128], outcome=result[:255], received_at=now
            )
        )
        session.flush()
    return result


def _handle(sessions: sessionmaker[Session], event: dict[str, Any]) -> str:
    try:
        with sessions() as session, session.begin():
            return apply_event(session, event)
    except IntegrityError:
        # The same event delivered twice at once: the other delivery recorded it first.
        return "replay"


def webhook_routes(
    session_factory: sessionmaker[Session], signing_secret: str | None, path: str = WEBHOOK_PATH
) -> list[Route]:
    """The webhook route, to mount on the ``spanledger serve`` Starlette app."""
    if not signing_secret:
        raise ConfigurationError(
            f"no Stripe webhook signing secret; set {SPANLEDGER_STRIPE_WEBHOOK_SECRET} "
            "to the endpoint's whsec_… secret"
        )
    handle: Callable[[sessionmaker[Session], dict[str, Any]], str] = _handle

    async def endpoint(request: Request) -> JSONResponse:
        payload = await request.body()
        signature = request.headers.get("stripe-signature")
        try:
            stripe.Webhook.construct_event(payload, signature, signing_secret)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            _log.warning("rejected a Stripe webhook: %s", exc)
            return JSONResponse({"error": "invalid signature or payload"}, status_code=400)
        try:
            outcome = await run_in_threadpool(handle, session_factory, event)
        except SpanledgerError as exc:
            # Stripe retries non-2xx deliveries, so a database outage loses nothing.
            _log.error("could not apply Stripe event %s: %s", event.get("id"), exc)
            return JSONResponse({"error": "temporarily unable to apply the event"}, status_code=503)
        return JSONResponse({"received": True, "outcome": outcome})

    return [Route(path, endpoint, methods=["POST"])]
