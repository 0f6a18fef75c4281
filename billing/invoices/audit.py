"""The audit trail of an invoice line: ``explain`` (events + recomputed amount) and exports.

A usage or late-usage line stores the selection it priced (meter snapshot, customer, window and the
sequence range ``(after, max]``) and the price snapshot, so replaying the selection gives back the
same events and, through the same pure functions, the same amount.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from spanledger.billing.catalog import price_from_json
from spanledger.billing.errors import NotFoundError
from spanledger.billing.invoices.lines import LateUsageInput, UsageInput, late_usage_line, usage_line
from spanledger.billing.invoices.selection import meter_events, meter_totals
from spanledger.billing.meters import MeterDefinition
from spanledger.billing.models import Customer, InvoiceLineRecord, InvoiceRecord
from spanledger.billing.pricing import currency_exponent, round_line_amount

__all__ = [
    "EVENT_COLUMNS",
    "Explanation",
    "events_csv",
    "explain",
    "invoice_csv",
    "invoice_events",
    "invoice_json",
    "money_text",
    "number_text",
]

EVENT_COLUMNS = (
    "line", "meter", "sequence", "occurred_at", "customer", "event_name", "provider", "model",
    "input_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "output_tokens",
    "reasoning_tokens", "upstream_cost", "trace_id", "span_id",
)  # fmt: skip
_LINE_COLUMNS = ("position", "kind", "description", "quantity", "unit_amount", "amount")


@dataclass(frozen=True, slots=True)
class Explanation:
    """A line, the events it covers, and the amount recomputed from them."""

    line: InvoiceLineRecord
    events: list[dict[str, Any]]
    recomputed_amount: Decimal

    @property
    def matches(self) -> bool:
        return self.recomputed_amount == self.line.amount


def _event_row(position: int, meter: str, row: Any) -> dict[str, Any]:
    return {
        "line": position, "meter": meter, "sequence": row["sequence"], "occurred_at": row["occurred_at"],
        "customer": row["customer"], "event_name": row["event_name"], "provider": row["provider"],
        "model": row["response_model"] or row["request_model"], "input_tokens": row["input_tokens"],
        "cache_read_input_tokens": row["cache_read_input_tokens"],
        "cache_write_input_tokens": row["cache_write_input_tokens"], "output_tokens": row["output_tokens"],
        "reasoning_tokens": row["reasoning_tokens"], "upstream_cost": row["upstream_cost"],
        "trace_id": row["trace_id"], "span_id": row["span_id"],
    }  # fmt: skip


def _definition(line: InvoiceLineRecord) -> MeterDefinition:
    snapshot = line.meter_snapshot or {}
    return MeterDefinition.parse(
        snapshot["name"], snapshot["aggregation"], snapshot.get("field"),
        event_name=snapshot.get("event_name"), filter=snapshot.get("filter"),
    )  # fmt: skip


def _selection(line: InvoiceLineRecord, invoice: InvoiceRecord) -> dict[str, Any]:
    return {
        "customer_id": invoice.customer_id,
        "start": line.window_start,
        "end": line.window_end,
        "after_sequence": line.after_sequence,
        "max_sequence": line.max_sequence,
    }


def _recompute(session: Session, invoice: InvoiceRecord, line: InvoiceLineRecord) -> Decimal:
    if line.kind not in ("usage", "late_usage") or line.meter_snapshot is None or line.price_snapshot is None:
        # Base fees, seats, packs and credits lines are priced from their recorded inputs.
        if line.unit_amount is None:
            return round_line_amount(Decimal(0), invoice.currency)
        fraction = Decimal(line.details.get("fraction", "1"))
        return round_line_amount(line.unit_amount * line.quantity * fraction, invoice.currency)
    definition = _definition(line)
    details = line.details
    selection = _selection(line, invoice)
    restated = line.kind == "late_usage" and "restated_quantity" in details
    if restated:
        # A late line prices the whole window restated, less what closed invoices billed before.
        selection["after_sequence"] = None
    totals = meter_totals(session, definition, **selection)
    price = price_from_json(line.price_snapshot)
    if line.kind == "usage":
        usage = UsageInput(
            definition.name, price, totals.value,
            upstream_cost=totals.upstream_cost if totals.event_count else None,
            credit_covered_units=Decimal(details.get("credit_covered_units", "0")),
            credit_covered_cost=_decimal_or_none(details.get("credit_covered_cost")),
        )  # fmt: skip
        return usage_line(usage).amount
    late_quantity, late_cost = totals.value, totals.upstream_cost
    if restated:
        late_quantity -= Decimal(details["billed_quantity"])
        late_cost -= Decimal(details["billed_upstream_cost"])
    late = LateUsageInput(
        definition.name, details["period"], price, Decimal(details["original_quantity"]),
        Decimal(details["original_exact_amount"]), late_quantity,
        original_upstream_cost=_decimal_or_none(details.get("original_upstream_cost")),
        late_upstream_cost=late_cost,
        late_covered_units=Decimal(details.get("credit_covered_units", "0")) if restated else Decimal(0),
        late_covered_cost=_decimal_or_none(details.get("late_covered_cost")),
    )  # fmt: skip
    return late_usage_line(late).amount


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _line_at(lines: list[InvoiceLineRecord], position: int) -> InvoiceLineRecord:
    for line in lines:
        if line.position == position:
            return line
    raise NotFoundError(f"the invoice has no line {position}; it has lines 1 to {len(lines)}")


def _line_events(session: Session, invoice: InvoiceRecord, line: InvoiceLineRecord) -> list[dict[str, Any]]:
    if line.meter_snapshot is None or line.window_start is None:
        return []
    definition = _definition(line)
    rows = meter_events(session, definition, **_selection(line, invoice))
    return [_event_row(line.position, definition.name, row) for row in rows]


def explain(
    session: Session, invoice: InvoiceRecord, lines: list[InvoiceLineRecord], position: int
) -> Explanation:
    """The events line ``position`` covers (with trace and span ids) and its recomputed amount."""
    line = _line_at(lines, position)
    return Explanation(line, _line_events(session, invoice, line), _recompute(session, invoice, line))


def invoice_events(
    session: Session, invoice: InvoiceRecord, lines: list[InvoiceLineRecord]
) -> list[dict[str, Any]]:
    """Every event the invoice's lines cover, line by line."""
    return [event for line in lines for event in _line_events(session, invoice, line)]


def money_text(value: Decimal | None, currency: str) -> str | None:
    """A rounded amount as printed: the currency's minor unit (``52.69``), never more places."""
    if value is None:
        return None
    return str(value.quantize(Decimal(1).scaleb(-currency_exponent(currency))))


def number_text(value: Decimal | None) -> str | None:
    """A quantity, unit price or cost without storage padding (``1.500000000000`` → ``1.5``)."""
    return None if value is None else format(value.normalize(), "f")


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return number_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _audit_json(line: InvoiceLineRecord) -> dict[str, Any] | None:
    if line.window_start is None:
        return None
    return {
        "meter": (line.meter_snapshot or {}).get("name"),
        "window_start": _text(line.window_start),
        "window_end": _text(line.window_end),
        "after_sequence": line.after_sequence,
        "max_sequence": line.max_sequence,
    }


def invoice_json(session: Session, invoice: InvoiceRecord, lines: list[InvoiceLineRecord]) -> dict[str, Any]:
    """The invoice as JSON-ready data (amounts as exact strings); cost and margin under ``admin``."""
    customer = session.get(Customer, invoice.customer_id)
    return {
        "id": invoice.id, "number": invoice.number, "customer": customer.external_id if customer else None,
        "period": invoice.period, "period_start": _text(invoice.period_start),
        "period_end": _text(invoice.period_end), "currency": invoice.currency, "status": invoice.status,
        "subtotal": money_text(invoice.subtotal, invoice.currency),
        "total": money_text(invoice.total, invoice.currency),
        "finalized_at": _text(invoice.finalized_at), "paid_at": _text(invoice.paid_at),
        "voided_at": _text(invoice.voided_at),
        "lines": [
            {
                "position": line.position, "kind": line.kind, "description": line.description,
                "quantity": number_text(line.quantity), "unit_amount": number_text(line.unit_amount),
                "amount": money_text(line.amount, invoice.currency), "details": line.details,
                "audit": _audit_json(line),
            }
            for line in lines
        ],
        "admin": {
            "upstream_cost": _text(invoice.upstream_cost), "margin": _text(invoice.margin),
            "unknown_cost_events": invoice.unknown_cost_events,
        },
    }  # fmt: skip


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else _text(row.get(key)) for key in columns})
    return buffer.getvalue()


def invoice_csv(invoice: InvoiceRecord, lines: list[InvoiceLineRecord]) -> str:
    """The customer-visible lines as CSV (no cost or margin columns)."""
    rows = [{column: getattr(line, column) for column in _LINE_COLUMNS} for line in lines]
    for row in rows:
        row["amount"] = money_text(row["amount"], invoice.currency)
    return _csv(_LINE_COLUMNS, rows)


def events_csv(events: list[dict[str, Any]]) -> str:
    return _csv(EVENT_COLUMNS, events)
