"""Invoices: line computation and lifecycle (pure), runs, audit trail and exports (services)."""

from spanledger.billing.invoices.lifecycle import (
    InvoiceStatus,
    check_editable,
    check_transition,
    format_number,
)
from spanledger.billing.invoices.lines import (
    InvoiceLine,
    InvoiceTotals,
    LateUsageInput,
    LineKind,
    UsageInput,
    base_fee_line,
    credits_line,
    invoice_totals,
    late_usage_line,
    pack_line,
    usage_line,
)

__all__ = [
    "InvoiceLine",
    "InvoiceStatus",
    "InvoiceTotals",
    "LateUsageInput",
    "LineKind",
    "UsageInput",
    "base_fee_line",
    "check_editable",
    "check_transition",
    "credits_line",
    "format_number",
    "invoice_totals",
    "late_usage_line",
    "pack_line",
    "usage_line",
]
