"""Every environment variable the Stripe integration reads, in one place.

An explicit argument (CLI option, :class:`~spanledger.billing.stripe.StripeSettings` field) wins,
else the environment variable, else the default.
"""

from __future__ import annotations

__all__ = [
    "SPANLEDGER_STRIPE_API_BASE",
    "SPANLEDGER_STRIPE_API_KEY",
    "SPANLEDGER_STRIPE_COLLECTION",
    "SPANLEDGER_STRIPE_DAYS_UNTIL_DUE",
    "SPANLEDGER_STRIPE_METERS",
    "SPANLEDGER_STRIPE_METER_INTERVAL",
    "SPANLEDGER_STRIPE_MODE",
    "SPANLEDGER_STRIPE_WEBHOOK_SECRET",
]

SPANLEDGER_STRIPE_API_KEY = "SPANLEDGER_STRIPE_API_KEY"
"""The Stripe secret key (``sk_live_…``, ``sk_test_…`` or a restricted ``rk_…`` key) used by
``spanledger stripe sync``. Required unless ``--dry-run``."""

SPANLEDGER_STRIPE_WEBHOOK_SECRET = "SPANLEDGER_STRIPE_WEBHOOK_SECRET"
"""The signing secret (``whsec_…``) of the webhook endpoint configured in Stripe; the webhook
route rejects every request whose ``Stripe-Signature`` it does not verify."""

SPANLEDGER_STRIPE_MODE = "SPANLEDGER_STRIPE_MODE"
"""The default mode for customers without their own: ``invoices`` (spanledger rates, Stripe
collects; the default) or ``meters`` (usage is pushed as Stripe meter events, Stripe rates it).
Set a customer's own mode with ``spanledger stripe link CUSTOMER --mode``."""

SPANLEDGER_STRIPE_COLLECTION = "SPANLEDGER_STRIPE_COLLECTION"
"""What happens after a Stripe invoice is finalized (mode ``invoices``): ``charge`` (default: pay
it now with the customer's default payment method), ``send_invoice`` (Stripe emails the invoice,
due in ``SPANLEDGER_STRIPE_DAYS_UNTIL_DUE`` days) or ``none`` (finalize only; collect yourself)."""

SPANLEDGER_STRIPE_DAYS_UNTIL_DUE = "SPANLEDGER_STRIPE_DAYS_UNTIL_DUE"
"""Days until a ``send_invoice`` invoice is due. Default 30."""

SPANLEDGER_STRIPE_METERS = "SPANLEDGER_STRIPE_METERS"
"""Mode ``meters``: which spanledger meters feed which Stripe meters, as
``spanledger_meter=stripe_event_name`` pairs separated by commas
(``output-tokens=llm_output_tokens,requests=llm_requests``). Only ``sum`` and ``count`` meters
can be pushed (Stripe adds the values up)."""

SPANLEDGER_STRIPE_METER_INTERVAL = "SPANLEDGER_STRIPE_METER_INTERVAL"
"""Mode ``meters``: seconds of usage aggregated into one meter event per customer and meter.
Default 300 (five minutes)."""

SPANLEDGER_STRIPE_API_BASE = "SPANLEDGER_STRIPE_API_BASE"
"""Testing only: the base URL of a Stripe-compatible API (a local fake or stripe-mock) instead of
``https://api.stripe.com``."""
