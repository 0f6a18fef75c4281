"""The admin's Cost Insights figures: margin per customer, per model and per day, the customers with
a negative margin, and usage anomalies — from the daily and hourly rollups and the stored line splits,
never from a scan of the events (O(rollup cells + invoice lines), whatever the size of the ledger).

The rules are :mod:`spanledger.billing.margin_report`'s: revenue is what non-void invoices of the
report currency charge, for invoices whose billing month starts in the window; upstream cost is the
stored cost of every event that occurred in the window (billed or not; unknown costs are counted,
never taken as 0), read from the rollups summed in SQL by (customer, day) and by model
(:func:`spanledger.billing.rollups.queries.cost_totals`).
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

from sqlalchemy.orm import Session

from spanledger.billing.line_weights import RevenueLine, WeightGroup, revenue_lines
from spanledger.billing.margins import MarginRow, allocate
from spanledger.billing.portal.anomalies import Anomaly, usage_anomalies
from spanledger.billing.pricing import normalize_currency
from spanledger.billing.rollups.queries import cost_totals

__all__ = ["AdminView", "admin_view"]

_ZERO = Decimal(0)
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


#: key → [revenue, upstream cost, unknown-cost events]
_Totals = dict[str, list[Any]]


def _add(totals: _Totals, key: str, revenue: Decimal, cost: Decimal, unknown: int) -> None:
    entry = totals.get(key)
    if entry is None:
        totals[key] = [revenue, cost, unknown]
    else:
        entry[0] += revenue
        entry[1] += cost
        entry[2] += unknown


def _by_model_and_day(groups: list[WeightGroup]) -> list[tuple[str, str, Decimal]]:
    """A line's groups summed by (model, day), in (model, day) order with the unknown model first."""
    summed: dict[tuple[str | None, str], Decimal] = {}
    for group in groups:
        key = (group.model, group.day)
        summed[key] = summed.get(key, _ZERO) + group.weight
    ordered = sorted(summed.items(), key=lambda item: (item[0][0] is not None, item[0][0] or "", item[0][1]))
    return [(model or "(unknown model)", day, weight) for (model, day), weight in ordered]


def _add_revenue(
    lines: list[RevenueLine], currency: str, by_customer: _Totals, by_model: _Totals, by_day: _Totals
) -> None:
    """Each line's amount to its customer, and split over its (model, day) groups by model and by day."""
    model_revenue: dict[str, Decimal] = defaultdict(Decimal)  # summed here, added to the totals once
    day_revenue: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        _add(by_customer, line.customer, line.amount, _ZERO, 0)
        groups = _by_model_and_day(line.groups)
        if not groups:
            model_revenue[_NON_USAGE.get(line.kind, f"({line.kind.replace('_', ' ')})")] += line.amount
            day_revenue[line.period_start.date().isoformat()] += line.amount
            continue
        parts = allocate(line.amount, [weight for _, _, weight in groups], currency)
        for (model, day, _weight), part in zip(groups, parts, strict=True):
            model_revenue[model] += part
            day_revenue[day] += part
    for totals, revenue in ((by_model, model_revenue), (by_day, day_revenue)):
        for key, amount in revenue.items():
            _add(totals, key, amount, _ZERO, 0)


def _rows(totals: _Totals) -> list[MarginRow]:
    return [MarginRow(key, v[0], v[1], v[2]) for key, v in sorted(totals.items())]


def admin_view(session: Session, *, start: datetime, end: datetime, currency: str = "USD") -> AdminView:
    """Cost Insights over ``[start, end)`` in ``currency``."""
    currency = normalize_currency(currency)
    by_customer: _Totals = {}
    by_model: _Totals = {}
    by_day: _Totals = {}
    daily: dict[str, dict[str, Decimal]] = defaultdict(dict)
    requests = 0
    # Summed in SQL by (customer, day) and by model: tens of rows per customer, not one per model too.
    groupings = [("customer", "day"), ("model",)]
    per_customer_day, per_model = cost_totals(session, currency, start, end, groupings)
    for (customer, day), (cost, unknown, count, _priced) in per_customer_day.items():
        _add(by_customer, customer, _ZERO, cost, unknown)
        _add(by_day, day, _ZERO, cost, unknown)
        if count:
            requests += count
            daily[customer][day] = Decimal(count)
    for (model,), (cost, unknown, _count, _priced) in per_model.items():
        _add(by_model, model or "(unknown model)", _ZERO, cost, unknown)
    _add_revenue(revenue_lines(session, currency, start, end), currency, by_customer, by_model, by_day)
    customers = _rows(by_customer)
    negative = sorted((r for r in customers if r.negative), key=lambda r: (r.gross_margin, r.key))
    anomalies = usage_anomalies({customer: sorted(days.items()) for customer, days in daily.items()})
    return AdminView(
        currency, start, end, customers, _rows(by_model), _rows(by_day), negative, anomalies, requests
    )
