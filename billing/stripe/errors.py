"""Stripe failures as spanledger errors: Stripe's SDK exceptions are translated here, at the boundary.

::

    SpanledgerError
    └── StripeSyncError              one Stripe request failed; ``kind`` says how
        kinds: card_declined · rate_limited · network · invalid_request · authentication ·
               idempotency · api
"""

from __future__ import annotations

import stripe

from spanledger.billing.errors import SpanledgerError

__all__ = ["StripeSyncError", "translate_stripe_error"]


class StripeSyncError(SpanledgerError):
    """A Stripe request failed; ``kind`` classifies it and ``retryable`` says whether a re-run may help."""

    def __init__(self, message: str, kind: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.code = code


def translate_stripe_error(exc: stripe.StripeError) -> StripeSyncError:
    """The :class:`StripeSyncError` for one exception raised by the Stripe SDK."""
    detail = exc.user_message or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    if isinstance(exc, stripe.CardError):
        return StripeSyncError(
            f"the card was declined ({code or 'card_error'}): {detail}", "card_declined", code=code
        )
    if isinstance(exc, stripe.RateLimitError):
        return StripeSyncError(f"Stripe rate limit: {detail}; re-run later", "rate_limited", retryable=True)
    if isinstance(exc, stripe.APIConnectionError):
        return StripeSyncError(f"could not reach Stripe: {detail}; re-run later", "network", retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeSyncError(
            f"Stripe refused the API key: {detail}; check SPANLEDGER_STRIPE_API_KEY", "authentication"
        )
    if isinstance(exc, stripe.IdempotencyError):
        return StripeSyncError(f"Stripe idempotency conflict: {detail}", "idempotency")
    if isinstance(exc, stripe.InvalidRequestError):
        return StripeSyncError(f"Stripe rejected the request: {detail}", "invalid_request", code=code)
    status = exc.http_status
    return StripeSyncError(
        f"Stripe error{f' (HTTP {status})' if status else ''}: {detail}; re-run later",
        "api",
        retryable=True,
    )
