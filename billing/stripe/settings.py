"""Configuration of the Stripe integration: explicit value, else environment variable, else default.

A bad environment value is logged and the default used; a bad explicit value raises
:class:`~spanledger.billing.errors.ConfigurationError` with a sentence saying what to change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from spanledger.billing.environment_variables import positive_int_from_env
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.stripe.environment_variables import (
    SPANLEDGER_STRIPE_API_BASE,
    SPANLEDGER_STRIPE_API_KEY,
    SPANLEDGER_STRIPE_COLLECTION,
    SPANLEDGER_STRIPE_DAYS_UNTIL_DUE,
    SPANLEDGER_STRIPE_METER_INTERVAL,
    SPANLEDGER_STRIPE_METERS,
    SPANLEDGER_STRIPE_MODE,
    SPANLEDGER_STRIPE_WEBHOOK_SECRET,
)

__all__ = ["Collection", "StripeMode", "StripeSettings", "parse_meter_map"]

_log = logging.getLogger(__name__)

DEFAULT_DAYS_UNTIL_DUE = 30
DEFAULT_METER_INTERVAL_SECONDS = 300


class StripeMode(StrEnum):
    """How a customer is billed through Stripe."""

    #: spanledger prices usage and issues invoices; Stripe receives them and collects the money.
    INVOICES = "invoices"
    #: spanledger pushes usage as meter events; Stripe prices and invoices it.
    METERS = "meters"


class Collection(StrEnum):
    """What happens after a Stripe invoice is finalized."""

    CHARGE = "charge"
    SEND_INVOICE = "send_invoice"
    NONE = "none"


def parse_meter_map(text: str) -> dict[str, str]:
    """``"a=x,b=y"`` → ``{"a": "x", "b": "y"}`` (spanledger meter → Stripe meter event name)."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        meter, separator, event_name = item.partition("=")
        meter, event_name = meter.strip(), event_name.strip()
        if not separator or not meter or not event_name or len(event_name) > 100:
            raise ConfigurationError(
                f"Stripe meter mapping {item!r} is not spanledger_meter=stripe_event_name "
                "(event names are at most 100 characters)"
            )
        mapping[meter] = event_name
    return mapping


def _env_choice(name: str, enum: type[StrEnum], default: StrEnum, environ: Mapping[str, str]) -> StrEnum:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        return enum(raw.strip().lower())
    except ValueError:
        _log.warning("%s=%r is not one of %s; using %s", name, raw, [e.value for e in enum], default)
        return default


@dataclass(frozen=True)
class StripeSettings:
    """Everything the Stripe integration needs to know; build it with :meth:`from_env`."""

    api_key: str | None = None
    webhook_secret: str | None = None
    default_mode: StripeMode = StripeMode.INVOICES
    collection: Collection = Collection.CHARGE
    days_until_due: int = DEFAULT_DAYS_UNTIL_DUE
    #: spanledger meter name → Stripe meter event name (mode ``meters``).
    meters: dict[str, str] = field(default_factory=dict)
    meter_interval_seconds: int = DEFAULT_METER_INTERVAL_SECONDS
    api_base: str | None = None
    #: How often a rate-limited request is retried (with exponential backoff) before giving up.
    rate_limit_retries: int = 4
    #: The first backoff delay in seconds; it doubles on every retry.
    backoff_seconds: float = 0.5
    #: Network-level retries the Stripe SDK does itself (same idempotency key on every try).
    network_retries: int = 2

    def __post_init__(self) -> None:
        if self.days_until_due <= 0:
            raise ConfigurationError(f"days until due must be positive, not {self.days_until_due}")
        if self.meter_interval_seconds <= 0:
            raise ConfigurationError(
                f"the meter interval must be a positive number of seconds, not {self.meter_interval_seconds}"
            )
        if self.rate_limit_retries < 0 or self.network_retries < 0 or self.backoff_seconds < 0:
            raise ConfigurationError("retry counts and the backoff delay cannot be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: object) -> StripeSettings:
        """Settings from ``environ`` (default ``os.environ``); keyword arguments that are not None win."""
        env = os.environ if environ is None else environ
        meters_text = env.get(SPANLEDGER_STRIPE_METERS, "")
        values: dict[str, object] = {
            "api_key": env.get(SPANLEDGER_STRIPE_API_KEY) or None,
            "webhook_secret": env.get(SPANLEDGER_STRIPE_WEBHOOK_SECRET) or None,
            "default_mode": _env_choice(SPANLEDGER_STRIPE_MODE, StripeMode, StripeMode.INVOICES, env),
            "collection": _env_choice(SPANLEDGER_STRIPE_COLLECTION, Collection, Collection.CHARGE, env),
            "days_until_due": positive_int_from_env(
                env, SPANLEDGER_STRIPE_DAYS_UNTIL_DUE, DEFAULT_DAYS_UNTIL_DUE
            ),
            "meters": parse_meter_map(meters_text) if meters_text else {},
            "meter_interval_seconds": positive_int_from_env(
                env, SPANLEDGER_STRIPE_METER_INTERVAL, DEFAULT_METER_INTERVAL_SECONDS
            ),
            "api_base": env.get(SPANLEDGER_STRIPE_API_BASE) or None,
        }
        values.update({key: value for key, value in explicit.items() if value is not None})
        if isinstance(values["default_mode"], str):
            values["default_mode"] = _explicit_choice(StripeMode, values["default_mode"], "mode")
        if isinstance(values["collection"], str):
            values["collection"] = _explicit_choice(Collection, values["collection"], "collection")
        return cls(**values)  # type: ignore[arg-type]


def _explicit_choice(enum: type[StrEnum], value: str, what: str) -> StrEnum:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(e.value for e in enum)
        raise ConfigurationError(f"Stripe {what} {value!r} is not one of {choices}") from None
