"""Invoice operations on the database; the session (or a session factory) is passed in.

- :func:`run_invoices` writes one draft per subscribed customer for a month, idempotently: a re-run
  rewrites the drafts, and two racing runs produce one set of invoices. Each customer's draft is
  written under a per-customer-and-period lock (a PostgreSQL advisory transaction lock; SQLite
  serialises writers with ``BEGIN IMMEDIATE``) and the ``(customer_id, period)`` unique constraint.
- :func:`finalize` freezes a draft and gives it the next gapless number of its currency, allocated in
  the same transaction by locking the currency's ``invoice_numbers`` row; :func:`pay` and
  :func:`void` record the end of the lifecycle. A finalized invoice never changes
  (:mod:`spanledger.billing.invoices.guard`).
- :func:`explain` replays a line's recorded selection and recomputes its amount.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.db import storage_errors
from spanledger.billing.errors import NotFoundError
from spanledger.billing.invoices.credit_effects import grant_plan_credits, settle_overage
from spanledger.billing.invoices.drafts import (
    DraftLine,
    Settlements,
    ingestion_head,
    late_lines,
    late_settlements,
    subscription_draft_lines,
    usage_window,
)
from spanledger.billing.invoices.lifecycle import (
    InvoiceStatus,
    check_editable,
    check_transition,
    format_number,
)
from spanledger.billing.invoices.lines import invoice_totals
from spanledger.billing.models import (
    Customer,
    InvoiceLineRecord,
    InvoiceNumber,
    InvoiceRecord,
    SubscriptionRecord,
    UsageRollup,
)
from spanledger.billing.subscriptions import (
    Period,
    billing_month_starting_in,
    parse_period,
)

__all__ = [
    "InvoiceOutcome",
    "RunSummary",
    "ensure_editable",
    "finalize",
    "find_invoice",
    "invoice_lines",
    "list_invoices",
    "pay",
    "run_invoices",
    "void",
]

_ZERO = Decimal(0)
SessionSource = Session | sessionmaker[Session]


@dataclass(frozen=True, slots=True)
class InvoiceOutcome:
    """What a run did for one customer: ``created``, ``updated`` or ``skipped`` (with the reason)."""

    customer: str
    action: str
    invoice_id: int | None = None
    currency: str | None = None
    total: Decimal | None = None
    reason: str | None = None


@dataclass(slots=True)
class RunSummary:
    """The result of ``invoices run``: per-customer outcomes and totals per currency."""

    period: str
    outcomes: list[InvoiceOutcome] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "created")

    @property
    def updated(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "updated")

    @property
    def skipped(self) -> list[InvoiceOutcome]:
        return [o for o in self.outcomes if o.action == "skipped"]

    @property
    def totals(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for o in self.outcomes:
            if o.action != "skipped" and o.currency is not None and o.total is not None:
                result[o.currency] = result.get(o.currency, _ZERO) + o.total
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "created": self.created,
            "updated": self.updated,
            "totals": {currency: str(total) for currency, total in sorted(self.totals.items())},
            "invoices": [
                {"customer": o.customer, "action": o.action, "invoice_id": o.invoice_id,
                 "currency": o.currency, "total": None if o.total is None else str(o.total)}
                for o in self.outcomes if o.action != "skipped"
            ],
            "skipped": [{"customer": o.customer, "reason": o.reason} for o in self.skipped],
        }  # fmt: skip


def _month(period: str) -> tuple[int, int]:
    return parse_period(period)


def _lock_customer_period(session: Session, customer_id: int, period: str) -> None:
    # SQLite already holds the database write lock (BEGIN IMMEDIATE); PostgreSQL needs a named lock
    # because a draft that does not exist yet has no row to lock.
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"spanledger-invoice:{customer_id}:{period}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _billable_subscriptions(
    session: Session, year: int, month: int, customer_id: int | None = None
) -> dict[int, list[tuple[SubscriptionRecord, Period]]]:
    """Per customer: the subscriptions active during their billing month starting in ``year-month``."""
    found: dict[int, list[tuple[SubscriptionRecord, Period]]] = {}
    statement = select(SubscriptionRecord).order_by(SubscriptionRecord.id)
    if customer_id is not None:
        statement = statement.where(SubscriptionRecord.customer_id == customer_id)
    for subscription in session.scalars(statement):
        period = billing_month_starting_in(subscription.anchor, year, month)
        if subscription.started_at >= period.end:
            continue
        if subscription.ends_at is not None and subscription.ends_at <= period.start:
            continue
        found.setdefault(subscription.customer_id, []).append((subscription, period))
    return found


def _store_lines(session: Session, invoice: InvoiceRecord, lines: list[DraftLine]) -> None:
    for position, draft in enumerate(lines, start=1):
        line = draft.line
        session.add(
            InvoiceLineRecord(
                invoice_id=invoice.id, position=position, kind=line.kind.value, description=line.description,
                quantity=line.quantity, unit_amount=line.unit_amount, exact_amount=str(line.exact_amount),
                amount=line.amount, upstream_cost=line.upstream_cost,
                details={**line.details, **draft.extra_details}, meter_id=draft.meter_id,
                meter_snapshot=draft.meter_snapshot, price_snapshot=draft.price_snapshot,
                window_start=draft.window_start, window_end=draft.window_end,
                after_sequence=draft.after_sequence, max_sequence=draft.max_sequence,
            )
        )  # fmt: skip


def _subscriptions_lines(
    session: Session,
    customer: Customer,
    entries: list[tuple[SubscriptionRecord, Period]],
    head: int,
    settlements: Settlements | None = None,
) -> tuple[str, list[DraftLine]]:
    """(currency, lines) of every subscription billed this month, in the order they started."""
    every = list(
        session.scalars(select(SubscriptionRecord).where(SubscriptionRecord.customer_id == customer.id))
    )
    currencies: set[str] = set()
    lines: list[DraftLine] = []
    for subscription, period in entries:
        window = usage_window(subscription, period, every)
        currency, own = subscription_draft_lines(
            session, subscription, period, head, window, whole_period=False, settlements=settlements
        )
        currencies.add(currency)
        lines += own
    if len(currencies) > 1:
        raise LookupError(f"its subscriptions this month bill in {' and '.join(sorted(currencies))}")
    return currencies.pop(), lines


def _write_draft(
    session: Session, customer: Customer, entries: list[tuple[SubscriptionRecord, Period]], label: str
) -> InvoiceOutcome:
    """Write the customer's draft for ``label``: all its subscriptions of the month on one invoice."""
    _lock_customer_period(session, customer.id, label)
    existing = session.scalar(
        select(InvoiceRecord).where(InvoiceRecord.customer_id == customer.id, InvoiceRecord.period == label)
    )
    if existing is not None and existing.status != InvoiceStatus.DRAFT:
        reason = f"invoice {existing.number or existing.id} for {label} is already {existing.status}"
        return InvoiceOutcome(customer.external_id, "skipped", existing.id, reason=reason)
    # Every plan of the month grants its own credits (keyed per plan and grant period), whatever the
    # order. The order decides only who closes the previous grant period, once: the subscription the
    # month starts on (entries are in start order), at its period start and with its plan's rollover
    # limit, as the first plan segment does within one subscription. (The latest first would close
    # it when the later subscription starts, under that plan's limit, leaving the month's first
    # days without the rollover.)
    for subscription, period in entries:
        grant_plan_credits(session, subscription, period, label)
    head = ingestion_head(session)
    currency, lines = _subscriptions_lines(session, customer, entries, head)
    late = late_lines(session, customer.id, label, currency, head)
    settlements = late_settlements(late)
    if settlements:
        # Late overage billed in money here is settled by this invoice, not by this month's credits.
        currency, lines = _subscriptions_lines(session, customer, entries, head, settlements)
    lines += late
    subscription, period = entries[-1]
    period = Period(min(p.start for _, p in entries), max(p.end for _, p in entries))
    totals = invoice_totals([d.line for d in lines], currency)
    now = datetime.now(UTC)
    if existing is None:
        invoice = InvoiceRecord(
            customer_id=customer.id, period=label, created_at=now, status=InvoiceStatus.DRAFT
        )
        session.add(invoice)
        action = "created"
    else:
        invoice = existing
        for old in session.scalars(
            select(InvoiceLineRecord).where(InvoiceLineRecord.invoice_id == invoice.id)
        ):
            session.delete(old)
        action = "updated"
    invoice.subscription_id = subscription.id
    invoice.period_start, invoice.period_end = period.start, period.end
    invoice.currency = currency
    invoice.subtotal, invoice.total = totals.subtotal, totals.total
    invoice.upstream_cost, invoice.margin = totals.upstream_cost, totals.margin
    invoice.unknown_cost_events = totals.unknown_cost_events
    invoice.updated_at = now
    session.flush()
    _store_lines(session, invoice, lines)
    session.flush()
    return InvoiceOutcome(customer.external_id, action, invoice.id, currency, totals.total)


def _customers_with_usage(session: Session, start: datetime, end: datetime) -> list[Customer]:
    # A calendar month is whole UTC hours, so the hourly rollups know exactly who has usage in it.
    ids = select(UsageRollup.customer_id).where(UsageRollup.hour >= start, UsageRollup.hour < end)
    return list(session.scalars(select(Customer).where(Customer.id.in_(ids)).order_by(Customer.external_id)))


def _run_one(session: Session, customer_id: int, label: str) -> InvoiceOutcome:
    year, month = _month(label)
    customer = session.get(Customer, customer_id)
    assert customer is not None
    entries = _billable_subscriptions(session, year, month, customer_id).get(customer_id, [])
    if not entries:  # canceled between the listing and this transaction
        return InvoiceOutcome(customer.external_id, "skipped", reason=f"no subscription in {label}")
    # One ended mid-month and the next one started: both go on the month's one invoice.
    entries.sort(key=lambda entry: (entry[0].started_at, entry[0].id))
    try:
        return _write_draft(session, customer, entries, label)
    except LookupError as exc:
        return InvoiceOutcome(customer.external_id, "skipped", reason=str(exc))


def run_invoices(
    sessions: SessionSource, period: str, *, progress: Callable[[int, int], None] | None = None
) -> RunSummary:
    """Write (or rewrite) the drafts of ``period`` (``2026-11``) for every subscribed customer.

    With a session factory each customer gets a transaction of its own (committed as it goes); with a
    session everything happens in the caller's transaction. ``progress(done, total)`` is called after
    each customer.
    """
    year, month = _month(period)
    label = f"{year:04d}-{month:02d}"
    summary = RunSummary(label)
    with _reader(sessions) as session, storage_errors():
        subscribed = sorted(_billable_subscriptions(session, year, month))
        calendar_month = billing_month_starting_in(datetime(year, month, 1, tzinfo=UTC), year, month)
        unsubscribed = [
            c.external_id for c in _customers_with_usage(session, calendar_month.start, calendar_month.end)
            if c.id not in subscribed
        ]  # fmt: skip
    for index, customer_id in enumerate(subscribed, start=1):
        summary.outcomes.append(_run_with_retry(sessions, customer_id, label))
        if progress is not None:
            progress(index, len(subscribed))
    for external_id in unsubscribed:
        summary.outcomes.append(
            InvoiceOutcome(external_id, "skipped", reason=f"has usage but no subscription in {label}")
        )
    return summary


class _reader:
    """A session to read with: the caller's, or a short-lived one from the factory."""

    def __init__(self, sessions: SessionSource) -> None:
        self._sessions = sessions
        self._own: Session | None = None

    def __enter__(self) -> Session:
        if isinstance(self._sessions, Session):
            return self._sessions
        self._own = self._sessions()
        return self._own

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


def _run_with_retry(sessions: SessionSource, customer_id: int, label: str) -> InvoiceOutcome:
    if isinstance(sessions, Session):
        with storage_errors(), sessions.begin_nested():
            return _run_one(sessions, customer_id, label)
    for attempt in range(2):
        try:
            with sessions() as session, session.begin(), storage_errors():
                return _run_one(session, customer_id, label)
        except IntegrityError:
            # Another run inserted the same draft between our read and our insert; the retry
            # finds it (under the lock) and rewrites it instead.
            if attempt:
                raise
    raise AssertionError("unreachable")


def find_invoice(session: Session, reference: str | int) -> InvoiceRecord:
    """An invoice by number (``USD-000001``) or id."""
    text_ref = str(reference).strip()
    if text_ref.isdigit():
        invoice = session.get(InvoiceRecord, int(text_ref))
    else:
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.number == text_ref.upper()))
    if invoice is None:
        raise NotFoundError(f"no invoice {text_ref!r}; see `spanledger invoices list`")
    return invoice


def invoice_lines(session: Session, invoice: InvoiceRecord) -> list[InvoiceLineRecord]:
    return list(
        session.scalars(
            select(InvoiceLineRecord)
            .where(InvoiceLineRecord.invoice_id == invoice.id)
            .order_by(InvoiceLineRecord.position)
        )
    )


def list_invoices(
    session: Session, *, period: str | None = None, customer: str | None = None, status: str | None = None
) -> list[tuple[InvoiceRecord, str]]:
    """(invoice, customer external id) pairs, newest period first."""
    statement = select(InvoiceRecord, Customer.external_id).join(
        Customer, Customer.id == InvoiceRecord.customer_id
    )
    if period is not None:
        year, month = _month(period)
        statement = statement.where(InvoiceRecord.period == f"{year:04d}-{month:02d}")
    if customer is not None:
        statement = statement.where(Customer.external_id == customer)
    if status is not None:
        statement = statement.where(InvoiceRecord.status == InvoiceStatus(status).value)
    statement = statement.order_by(InvoiceRecord.period.desc(), Customer.external_id)
    return [(invoice, external_id) for invoice, external_id in session.execute(statement).all()]


def _locked(session: Session, reference: str | int) -> InvoiceRecord:
    invoice = find_invoice(session, reference)
    session.refresh(invoice, with_for_update=True)
    return invoice


def _next_number(session: Session, currency: str) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(InvoiceNumber).values(currency=currency, last_number=0).on_conflict_do_nothing())
    row = session.scalar(select(InvoiceNumber).where(InvoiceNumber.currency == currency).with_for_update())
    assert row is not None
    row.last_number += 1
    return row.last_number


def finalize(session: Session, reference: str | int) -> InvoiceRecord:
    """Freeze a draft and number it ``USD-000042`` (in the caller's transaction)."""
    with storage_errors():
        invoice = _locked(session, reference)
        check_transition(invoice.status, InvoiceStatus.FINALIZED, f"invoice {invoice.number or invoice.id}")
        sequence = _next_number(session, invoice.currency)
        now = datetime.now(UTC)
        invoice.number_sequence = sequence
        invoice.number = format_number(invoice.currency, sequence)
        invoice.status = InvoiceStatus.FINALIZED
        invoice.finalized_at = invoice.updated_at = now
        session.flush()
        settle_overage(session, invoice, invoice_lines(session, invoice))
        # The usage lines' split by model and day, frozen with the invoice (margin report, Cost Insights).
        from spanledger.billing.line_weights import store_line_weights  # it imports invoices.selection

        store_line_weights(session, [invoice.id])
    return invoice


def pay(session: Session, reference: str | int, *, at: datetime | None = None) -> InvoiceRecord:
    """Record that a finalized invoice was paid."""
    with storage_errors():
        invoice = _locked(session, reference)
        check_transition(invoice.status, InvoiceStatus.PAID, f"invoice {invoice.number or invoice.id}")
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = at or datetime.now(UTC)
        session.flush()
    return invoice


def void(session: Session, reference: str | int, *, at: datetime | None = None) -> InvoiceRecord:
    """Void a draft or a finalized invoice; its content stays as it was (corrections are new documents)."""
    with storage_errors():
        invoice = _locked(session, reference)
        check_transition(invoice.status, InvoiceStatus.VOID, f"invoice {invoice.number or invoice.id}")
        invoice.status = InvoiceStatus.VOID
        invoice.voided_at = at or datetime.now(UTC)
        session.flush()
    return invoice


def ensure_editable(invoice: InvoiceRecord) -> None:
    """Raise :class:`~spanledger.billing.errors.ImmutableInvoiceError` unless ``invoice`` is a draft."""
    check_editable(invoice.status, f"invoice {invoice.number or invoice.id}")
