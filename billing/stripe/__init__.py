"""Billing with Stripe: two modes, chosen per customer, and payment status flowing back by webhook.

- ``invoices`` — spanledger rates, Stripe collects: each finalized invoice becomes a Stripe invoice
  with one item per line (:mod:`.invoice_sync`), finalized and, if configured, charged.
- ``meters`` — Stripe rates: usage is pushed as Stripe meter events, aggregated per customer, meter
  and interval, behind a stored high-water mark (:mod:`.meter_sync`).
- Webhooks (:func:`webhook_routes`) mark invoices paid, payment failed or void.

Configuration: :class:`StripeSettings` (see :mod:`.environment_variables`).
"""

from spanledger.billing.stripe.client import call_stripe, make_client
from spanledger.billing.stripe.customers import (
    CUSTOMER_METADATA_KEY,
    customer_mode,
    ensure_stripe_customer,
    link_customer,
    linked_customers,
)
from spanledger.billing.stripe.errors import StripeSyncError, translate_stripe_error
from spanledger.billing.stripe.invoice_plan import PlannedItem, item_description, plan_items, to_minor_units
from spanledger.billing.stripe.invoice_sync import InvoiceSyncResult, invoices_to_sync, sync_invoice
from spanledger.billing.stripe.meter_batches import MeterEventBatch, UsagePoint, aggregate_usage
from spanledger.billing.stripe.meter_sync import MeterSyncResult, sync_meter_usage
from spanledger.billing.stripe.payments import PaymentDecision, PaymentOutcome, apply_payment, decide
from spanledger.billing.stripe.settings import Collection, StripeMode, StripeSettings, parse_meter_map
from spanledger.billing.stripe.sync import SyncReport, run_sync
from spanledger.billing.stripe.webhooks import WEBHOOK_PATH, apply_event, webhook_routes

__all__ = [
    "CUSTOMER_METADATA_KEY",
    "WEBHOOK_PATH",
    "Collection",
    "InvoiceSyncResult",
    "MeterEventBatch",
    "MeterSyncResult",
    "PaymentDecision",
    "PaymentOutcome",
    "PlannedItem",
    "StripeMode",
    "StripeSettings",
    "StripeSyncError",
    "SyncReport",
    "UsagePoint",
    "aggregate_usage",
    "apply_event",
    "apply_payment",
    "call_stripe",
    "customer_mode",
    "decide",
    "ensure_stripe_customer",
    "invoices_to_sync",
    "item_description",
    "link_customer",
    "linked_customers",
    "make_client",
    "parse_meter_map",
    "plan_items",
    "run_sync",
    "sync_invoice",
    "sync_meter_usage",
    "to_minor_units",
    "translate_stripe_error",
    "webhook_routes",
]
