"""The immutability guard: no flush may change a finalized invoice or any of its lines.

The lifecycle functions already refuse to edit a non-draft invoice, but "a finalized invoice never
changes" must hold for any code that loads the ORM rows, so the rule is enforced once more where every
change passes: SQLAlchemy's ``before_flush``. A non-draft invoice may only move along its lifecycle
(status, ``paid_at``, ``voided_at``); its lines may not be added, changed or deleted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from spanledger.billing.errors import ImmutableInvoiceError
from spanledger.billing.invoices.lifecycle import InvoiceStatus
from spanledger.billing.models import InvoiceLineRecord, InvoiceRecord

__all__ = ["install_immutability_guard"]

#: What paying or voiding a finalized invoice may write.
_LIFECYCLE_COLUMNS = frozenset({"status", "paid_at", "voided_at", "updated_at"})
_installed = False


def _committed_status(invoice: InvoiceRecord) -> str | None:
    history = inspect(invoice).attrs.status.history
    if history.deleted:
        return str(history.deleted[0])
    if history.unchanged:
        return str(history.unchanged[0])
    return None if inspect(invoice).pending else invoice.status


def _label(invoice: InvoiceRecord) -> str:
    return f"invoice {invoice.number or invoice.id}"


def _check_invoice(invoice: InvoiceRecord, deleted: bool) -> None:
    status = _committed_status(invoice)
    if status is None or status == InvoiceStatus.DRAFT:
        return
    if deleted:
        raise ImmutableInvoiceError(
            f"{_label(invoice)} is {status} and cannot be deleted; issue a new document"
        )
    state = inspect(invoice)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    forbidden = sorted(changed - _LIFECYCLE_COLUMNS)
    if forbidden:
        raise ImmutableInvoiceError(
            f"{_label(invoice)} is {status}; its {', '.join(forbidden)} can no longer change; "
            "issue a new document"
        )


def _check_line(session: Session, line: InvoiceLineRecord) -> None:
    with session.no_autoflush:
        invoice = session.get(InvoiceRecord, line.invoice_id) if line.invoice_id is not None else None
    if invoice is None:
        return
    status = _committed_status(invoice)
    if status is not None and status != InvoiceStatus.DRAFT:
        raise ImmutableInvoiceError(
            f"{_label(invoice)} is {status}; its lines can no longer change; issue a new document"
        )


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, InvoiceRecord) and session.is_modified(obj):
            _check_invoice(obj, deleted=False)
        elif isinstance(obj, InvoiceLineRecord) and session.is_modified(obj):
            _check_line(session, obj)
    for obj in session.deleted:
        if isinstance(obj, InvoiceRecord):
            _check_invoice(obj, deleted=True)
        elif isinstance(obj, InvoiceLineRecord):
            _check_line(session, obj)
    for obj in session.new:
        if isinstance(obj, InvoiceLineRecord):
            _check_line(session, obj)


def install_immutability_guard() -> None:
    """Listen on every :class:`Session` (idempotent; done when ``spanledger.billing.invoices`` loads)."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _before_flush)
        _installed = True
