"""The Stripe client and the one retry loop around every Stripe request.

The SDK retries network failures itself (``max_network_retries``, same idempotency key each try).
It does not retry HTTP 429, so :func:`call_stripe` does: exponential backoff, bounded by
``StripeSettings.rate_limit_retries``, honouring ``Retry-After`` when Stripe sends one. Every other
failure is translated into :class:`~spanledger.billing.stripe.errors.StripeSyncError` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import stripe

from spanledger.billing.errors import ConfigurationError
from spanledger.billing.stripe.environment_variables import SPANLEDGER_STRIPE_API_KEY
from spanledger.billing.stripe.errors import translate_stripe_error
from spanledger.billing.stripe.settings import StripeSettings

__all__ = ["call_stripe", "make_client"]

T = TypeVar("T")

MAX_BACKOFF_SECONDS = 30.0


def make_client(settings: StripeSettings) -> stripe.StripeClient:
    """A :class:`stripe.StripeClient` for ``settings`` (pointed at ``api_base`` when one is set)."""
    if not settings.api_key:
        raise ConfigurationError(
            f"no Stripe API key; set {SPANLEDGER_STRIPE_API_KEY} (or use --dry-run to see what would be sent)"
        )
    base_addresses: stripe.BaseAddresses = {"api": settings.api_base} if settings.api_base else {}
    return stripe.StripeClient(
        settings.api_key,
        base_addresses=base_addresses,
        max_network_retries=settings.network_retries,
    )


def _retry_after(exc: stripe.StripeError) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_stripe(
    request: Callable[[], T],
    settings: StripeSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one Stripe request, retrying rate limits with backoff; raise ``StripeSyncError`` on failure."""
    delay = settings.backoff_seconds
    for attempt in range(settings.rate_limit_retries + 1):
        try:
            return request()
        except stripe.RateLimitError as exc:
            if attempt == settings.rate_limit_retries:
                raise translate_stripe_error(exc) from exc
            sleep(min(MAX_BACKOFF_SECONDS, max(delay, _retry_after(exc) or 0.0)))
            delay *= 2
        except stripe.StripeError as exc:
            raise translate_stripe_error(exc) from exc
    raise AssertionError("unreachable: the loop either returns or raises")
