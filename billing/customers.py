"""Customers: the paying accounts, known by the external id the AI product already uses.

Ingest creates a customer the first time an event names an unknown external id (currency USD, no
name or email); ``spanledger customers create`` / ``update`` fill in the rest. The reserved id
:data:`~spanledger.billing.usage_event.UNATTRIBUTED_CUSTOMER` holds usage whose span named no
customer; it cannot be created or renamed by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConflictError, InvalidEventError, NotFoundError
from spanledger.billing.models import Customer
from spanledger.billing.usage_event import UNATTRIBUTED_CUSTOMER

__all__ = ["create_customer", "get_customer", "list_customers", "update_customer", "validate_currency"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def validate_currency(currency: str) -> str:
    """An ISO 4217 code in upper case, or :class:`InvalidEventError`."""
    code = currency.strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidEventError(f"currency {currency!r} is not an ISO 4217 code such as USD or EUR")
    return code


def _validate_external_id(external_id: str) -> str:
    if not external_id or external_id != external_id.strip() or len(external_id) > 256:
        raise InvalidEventError("a customer id must be 1 to 256 characters with no surrounding spaces")
    if external_id == UNATTRIBUTED_CUSTOMER:
        raise InvalidEventError(f"{UNATTRIBUTED_CUSTOMER} is reserved for usage with no customer")
    return external_id


def create_customer(
    session: Session,
    external_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    currency: str = "USD",
) -> Customer:
    """Create a customer; :class:`ConflictError` if the external id exists already."""
    _validate_external_id(external_id)
    with storage_errors():
        if session.scalar(select(Customer.id).where(Customer.external_id == external_id)) is not None:
            raise ConflictError(
                f"customer {external_id!r} already exists; use `spanledger customers update` to change it"
            )
        customer = Customer(
            external_id=external_id,
            name=name,
            email=email,
            currency=validate_currency(currency),
            created_at=datetime.now(UTC),
        )
        session.add(customer)
        session.flush()
    return customer


def update_customer(
    session: Session,
    external_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    currency: str | None = None,
) -> Customer:
    """Change the given fields of an existing customer."""
    _validate_external_id(external_id)
    customer = get_customer(session, external_id)
    if name is not None:
        customer.name = name
    if email is not None:
        customer.email = email
    if currency is not None:
        customer.currency = validate_currency(currency)
    with storage_errors():
        session.flush()
    return customer


def get_customer(session: Session, external_id: str) -> Customer:
    with storage_errors():
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise NotFoundError(f"no customer {external_id!r}; see `spanledger customers list`")
    return customer


def list_customers(session: Session) -> list[Customer]:
    with storage_errors():
        return list(session.scalars(select(Customer).order_by(Customer.external_id)))
