"""Invoices: line computation and lifecycle (pure), runs, credit coverage, audit trail and exports."""

from spanledger.billing.invoices.audit import (
    Explanation,
    events_csv,
    explain,
    invoice_csv,
    invoice_events,
    invoice_json,
    money_text,
    number_text,
)
from spanledger.billing.invoices.coverage import CreditCoverage, credit_coverage
from spanledger.billing.invoices.guard import install_immutability_guard
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
from spanledger.billing.invoices.service import (
    InvoiceOutcome,
    RunSummary,
    ensure_editable,
    finalize,
    find_invoice,
    invoice_lines,
    list_invoices,
    pay,
    run_invoices,
    void,
)

# A finalized invoice never changes, whoever loads its rows (see guard.py).
install_immutability_guard()

__all__ = [
    "CreditCoverage",
    "Explanation",
    "InvoiceLine",
    "InvoiceOutcome",
    "InvoiceStatus",
    "InvoiceTotals",
    "LateUsageInput",
    "LineKind",
    "RunSummary",
    "UsageInput",
    "base_fee_line",
    "check_editable",
    "check_transition",
    "credit_coverage",
    "credits_line",
    "ensure_editable",
    "events_csv",
    "explain",
    "finalize",
    "find_invoice",
    "format_number",
    "install_immutability_guard",
    "invoice_csv",
    "invoice_events",
    "invoice_json",
    "invoice_lines",
    "invoice_totals",
    "late_usage_line",
    "list_invoices",
    "money_text",
    "number_text",
    "pack_line",
    "pay",
    "run_invoices",
    "usage_line",
    "void",
]
