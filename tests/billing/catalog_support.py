"""A ledger holding a catalog and a customer (plain functions; this module holds no tests)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.customers import create_customer

__all__ = ["catalog_with_customer"]


def catalog_with_customer(session: Session, catalog: dict, customer: str = "acme") -> Session:
    """Apply ``catalog`` (the YAML document as a dict) and create ``customer``; the session, flushed."""
    apply_catalog(session, parse_catalog(catalog))
    create_customer(session, customer)
    session.flush()
    return session
