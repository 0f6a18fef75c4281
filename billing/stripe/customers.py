"""Linking spanledger customers to Stripe customers (the session is passed in; the caller commits).

A customer is linked once and the link stored in ``stripe_customers``. To link, spanledger first
looks for a Stripe customer whose metadata ``spanledger_customer_id`` is the customer's external id
(one created by hand, or by an earlier run whose link was lost); only if there is none does it create
one, with an idempotency key derived from our customer id, so two racing or repeated runs inside
Stripe's idempotency window create one customer. Stripe's search index lags writes by up to a
minute, which is why the idempotency key, not the search, is what prevents duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.customers import get_customer
from spanledger.billing.db import storage_errors
from spanledger.billing.models import Customer, StripeCustomerLink
from spanledger.billing.stripe.client import call_stripe
from spanledger.billing.stripe.settings import StripeMode, StripeSettings

__all__ = [
    "CUSTOMER_METADATA_KEY",
    "customer_mode",
    "ensure_stripe_customer",
    "find_link",
    "link_customer",
    "linked_customers",
    "search_query",
]

CUSTOMER_METADATA_KEY = "spanledger_customer_id"


def search_query(external_id: str) -> str:
    """Stripe search query matching the customer's metadata (quotes and backslashes escaped)."""
    escaped = external_id.replace("\\", "\\\\").replace("'", "\\'")
    return f"metadata['{CUSTOMER_METADATA_KEY}']:'{escaped}'"


def find_link(session: Session, customer_id: int) -> StripeCustomerLink | None:
    with storage_errors():
        return session.get(StripeCustomerLink, customer_id)


def customer_mode(link: StripeCustomerLink | None, settings: StripeSettings) -> StripeMode:
    """The customer's own mode if set, else the deployment default."""
    if link is not None and link.mode:
        return StripeMode(link.mode)
    return settings.default_mode


def ensure_stripe_customer(
    session: Session, client: stripe.StripeClient, settings: StripeSettings, customer: Customer
) -> StripeCustomerLink:
    """The customer's link, creating or matching the Stripe customer if there is none yet."""
    link = find_link(session, customer.id)
    if link is not None and link.stripe_customer_id:
        return link
    found = call_stripe(
        lambda: client.v1.customers.search(params={"query": search_query(customer.external_id), "limit": 1}),
        settings,
    )
    if found.data:
        stripe_id = found.data[0].id
    else:
        params: stripe.CustomerCreateParams = {
            "metadata": {CUSTOMER_METADATA_KEY: customer.external_id},
            "description": f"spanledger customer {customer.external_id}",
        }
        if customer.name:
            params["name"] = customer.name
        if customer.email:
            params["email"] = customer.email
        created = call_stripe(
            lambda: client.v1.customers.create(
                params=params, options={"idempotency_key": f"spanledger-customer-{customer.id}"}
            ),
            settings,
        )
        stripe_id = created.id
    with storage_errors():
        if link is None:
            link = StripeCustomerLink(customer_id=customer.id, created_at=datetime.now(UTC))
            session.add(link)
        link.stripe_customer_id = stripe_id
        session.flush()
    return link


def link_customer(
    session: Session,
    external_id: str,
    *,
    stripe_customer_id: str | None = None,
    mode: StripeMode | None = None,
) -> StripeCustomerLink:
    """Set a customer's Stripe customer and/or mode by hand (``spanledger stripe link``).

    Without a Stripe customer id, a new link records only the mode; the next sync finds or creates
    the Stripe customer.
    """
    customer = get_customer(session, external_id)
    link = find_link(session, customer.id)
    with storage_errors():
        if link is None:
            link = StripeCustomerLink(customer_id=customer.id, created_at=datetime.now(UTC))
            session.add(link)
        if stripe_customer_id is not None:
            link.stripe_customer_id = stripe_customer_id
        if mode is not None:
            link.mode = mode.value
        session.flush()
    return link


def linked_customers(session: Session) -> list[tuple[Customer, StripeCustomerLink]]:
    with storage_errors():
        rows = session.execute(
            select(Customer, StripeCustomerLink)
            .join(StripeCustomerLink, StripeCustomerLink.customer_id == Customer.id)
            .order_by(Customer.external_id)
        ).all()
    return [(row[0], row[1]) for row in rows]
