"""The admin's Cost Insights figures: margin per customer, per model and per day, the customers with
a negative margin, and usage anomalies — from the daily and hourly rollups and the stored line splits,
never from a scan of the events (O(rollup cells + invoice lines), whatever the size of the ledger).

The rules are :mod:`spanledger.billing.margin_report`'s: revenue is what non-void invoices of the
report currency charge, for invoices whose billing month starts in the window; upstream cost is the
stored cost of every event that occurred in the window (billed or not; unknown costs are counted,
never taken as 0), read from the rollups (:func:`spanledger.billing.rollups.queries.daily_costs`).
By model and by day, a usage line's amount is split over the ``(model, day)`` groups of the events it
covers in proportion to their metered quantity (exact to the cent with
:func:`~spanledger.billing.margins.allocate`; a tie for the last cent goes to the earlier group in
(model, day) order) — groups stored when the invoice was finalized, computed from the rollups for
drafts (:mod:`spanledger.billing.line_weights`). Other lines belong to ``(base fee)`` /
``(credit packs)`` / ``(credits)`` and to the day their billing month starts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.line_weights import USAGE_KINDS, LineSelection, WeightGroup, revenue_line_weights
from spanledger.billing.margins import MarginRow, allocate, margin_rows
from spanledger.billing.models import Customer, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.portal.anomalies import Anomaly, usage_anomalies
from spanledger.billing.pricing import normalize_currency
from spanledger.billing.rollups.queries import daily_costs

__all__ = ["AdminView", "admin_view"]

_ZERO = Decimal(0)
_customers = Customer.__table__.c
_lines = InvoiceLineRecord.__table__.c
_invoices = InvoiceRecord.__table__.c
_NON_USAGE = {"base_fee": "(base fee)", "seats": "(base fee)", "credit_pack": "(credit packs)"}


@dataclass(frozen=True, slots=True)
class AdminView:
    currency: str
    start: datetime
    end: datetime
    by_customer: list[MarginRow]
    by_model: list[MarginRow]
    by_day: list[MarginRow]
    negative: list[MarginRow]
    anomalies: list[Anomaly]
    requests: int


#: (customer, model, day) → [revenue, cost, unknown-cost events, requests]
_Cube = dict[tuple[str, str, str], list[Any]]


def _cost_cube(session: Session, currency: str, start: datetime, end: datetime) -> _Cube:
    """Costs and requests per customer, model and day, from the rollups (provider summed away)."""
    cube: _Cube = {}
    for (customer, model, _provider, day), (cost, unknown, count, _priced) in daily_costs(
        session, currency, start, end
    ).items():
        entry = cube.setdefault((customer, model or "(unknown model)", day), [_ZERO, _ZERO, 0, 0])
        entry[1] += cost
        entry[2] += unknown
        entry[3] += count
    return cube


def _split_key(group: WeightGroup) -> tuple[str | None, str]:
    return (group.model, group.day)


def _by_model_and_day(groups: list[WeightGroup]) -> list[tuple[str, str, Decimal, int]]:
    """A line's groups summed by (model, day), in (model, day) order with the unknown model first."""
    summed: dict[tuple[str | None, str], list[Any]] = {}
    for group in groups:
        entry = summed.setdefault(_split_key(group), [_ZERO, 0])
        entry[0] += group.weight
        entry[1] += group.events
    ordered = sorted(summed.items(), key=lambda item: (item[0][0] is not None, item[0][0] or "", item[0][1]))
    return [(model or "(unknown model)", day, weight, events) for (model, day), (weight, events) in ordered]


def _add_revenue(session: Session, cube: _Cube, currency: str, start: datetime, end: datetime) -> None:
    joined = InvoiceLineRecord.__table__.join(
        InvoiceRecord.__table__, _invoices.id == _lines.invoice_id
    ).join(Customer.__table__, _customers.id == _invoices.customer_id)
    rows = session.execute(
        select(
            _lines.id, _lines.kind, _lines.amount, _lines.meter_snapshot, _customers.external_id,
            _invoices.period_start, _invoices.status, _invoices.customer_id, _lines.window_start,
            _lines.window_end, _lines.after_sequence, _lines.max_sequence,
        )
        .select_from(joined)
        .where(
            _invoices.currency == currency, _invoices.status != "void",
            _invoices.period_start >= start, _invoices.period_start < end, _lines.amount != 0,
        )
        .order_by(_lines.id)
    ).all()  # fmt: skip
    drafts: list[LineSelection] = []
    finalized: list[int] = []
    for row in rows:
        if row.meter_snapshot and row.kind in USAGE_KINDS:
            if row.status == "draft":
                drafts.append(LineSelection(
                    row.id, row.customer_id, row.meter_snapshot, row.window_start, row.window_end,
                    row.after_sequence, row.max_sequence,
                ))  # fmt: skip
            else:
                finalized.append(row.id)
    weights = revenue_line_weights(session, drafts, finalized)
    for row in rows:
        customer, amount = row.external_id, row.amount
        groups = _by_model_and_day(weights.get(row.id, []))
        if not groups:
            key = (
                customer,
                _NON_USAGE.get(row.kind, f"({row.kind.replace('_', ' ')})"),
                row.period_start.date().isoformat(),
            )
            cube.setdefault(key, [_ZERO, _ZERO, 0, 0])[0] += amount
            continue
        parts = allocate(amount, [weight for _, _, weight, _ in groups], currency)
        for (model, day_text, _weight, _events), part in zip(groups, parts, strict=True):
            cube.setdefault((customer, model, day_text), [_ZERO, _ZERO, 0, 0])[0] += part


def _rows(cube: _Cube, axis: int) -> list[MarginRow]:
    return margin_rows((key[axis], values[0], values[1], values[2]) for key, values in cube.items())


def admin_view(session: Session, *, start: datetime, end: datetime, currency: str = "USD") -> AdminView:
    """Cost Insights over ``[start, end)`` in ``currency``."""
    currency = normalize_currency(currency)
    cube = _cost_cube(session, currency, start, end)
    requests = sum(values[3] for values in cube.values())
    daily: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for (customer, _model, day), values in cube.items():
        if values[3]:
            daily[customer][day] = daily[customer].get(day, _ZERO) + values[3]
    _add_revenue(session, cube, currency, start, end)
    by_customer = _rows(cube, 0)
    negative = sorted((r for r in by_customer if r.negative), key=lambda r: (r.gross_margin, r.key))
    anomalies = usage_anomalies({customer: sorted(days.items()) for customer, days in daily.items()})
    return AdminView(
        currency, start, end, by_customer, _rows(cube, 1), _rows(cube, 2), negative, anomalies, requests
    )
