"""Upstream cost over the ledger: totals per customer, model or provider, and re-pricing the events
whose cost is unknown (NULL) once a price override for their model has been added.

Re-pricing only touches events with a NULL cost: an event that already carries a cost keeps it (and
its ``price_source``), so an invoice computed from it can still be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from spanledger.billing.costs.service import price_stored_events
from spanledger.billing.db import storage_errors
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.models import Customer, EventRecord
from spanledger.billing.rollups.maintenance import refresh_rollups

__all__ = ["CostRow", "RepriceResult", "cost_report", "reprice_unknown_costs"]

_events = EventRecord.__table__.c
_GROUPS = ("customer", "model", "provider")


@dataclass(frozen=True, slots=True)
class CostRow:
    key: str
    events: int
    upstream_cost: Decimal
    unknown_cost_events: int


@dataclass(frozen=True, slots=True)
class RepriceResult:
    examined: int
    priced: int

    @property
    def still_unknown(self) -> int:
        return self.examined - self.priced


def cost_report(
    session: Session, by: str = "customer", *, start: datetime | None = None, end: datetime | None = None
) -> list[CostRow]:
    """Upstream cost of the events in ``[start, end)`` grouped by customer, model or provider."""
    if by not in _GROUPS:
        raise ConfigurationError(f"cannot group costs by {by!r}; choose one of {', '.join(_GROUPS)}")
    key = {
        "customer": Customer.__table__.c.external_id,
        "model": func.coalesce(_events.response_model, _events.request_model),
        "provider": _events.provider,
    }[by]
    statement = (
        select(
            key,
            func.count(),
            func.sum(_events.upstream_cost),
            func.count() - func.count(_events.upstream_cost),
        )
        .select_from(
            EventRecord.__table__.join(Customer.__table__, Customer.__table__.c.id == _events.customer_id)
        )
        .group_by(key)
        .order_by(key)
    )
    if start is not None:
        statement = statement.where(_events.occurred_at >= start)
    if end is not None:
        statement = statement.where(_events.occurred_at < end)
    with storage_errors():
        rows = session.execute(statement).all()
    return [
        CostRow(name if name is not None else f"(unknown {by})", int(count), Decimal(cost or 0), int(unknown))
        for name, count, cost, unknown in rows
    ]


def reprice_unknown_costs(session: Session, *, batch_size: int = 1000) -> RepriceResult:
    """Price again every event whose upstream cost is NULL (overrides win over genai-prices)."""
    examined = priced = 0
    last = 0
    with storage_errors():
        connection = session.connection()
        while True:
            sequences = list(
                session.scalars(
                    select(_events.sequence)
                    .where(_events.upstream_cost.is_(None), _events.sequence > last)
                    .order_by(_events.sequence)
                    .limit(batch_size)
                )
            )
            if not sequences:
                break
            price_stored_events(connection, sequences)
            refresh_rollups(connection, sequences)  # the rollups' cost sums follow the new prices
            examined += len(sequences)
            last = sequences[-1]
        if examined:
            priced = examined - int(
                session.scalar(
                    select(func.count()).where(_events.upstream_cost.is_(None), _events.sequence <= last)
                )
                or 0
            )
    return RepriceResult(examined, priced)
