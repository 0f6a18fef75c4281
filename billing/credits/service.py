"""Credits storage: the ledger in ``credit_entries`` (append-only), read and written with an explicit session.

:func:`record_consumption` runs inside the ingest transaction, so a balance is exact the moment the
events that consumed it commit. Plan grants, period closes and overage settlements carry an
idempotency key, so repeating them (every ``invoices run``) never grants twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.orm import Session

from spanledger.billing.credits.ledger import (
    CreditEntry,
    EntryKind,
    GrantSource,
    close_grant_period,
    consumption_entry,
    credits_for_usage,
    expiry_correction,
    occurrence_key,
    replay,
    unlimited_active,
)
from spanledger.billing.credits.packs import CreditPack, purchase_entry
from spanledger.billing.errors import ConflictError, NotFoundError
from spanledger.billing.meters import MeterDefinition, compile_filter, resolve_field
from spanledger.billing.meters.aggregations import Aggregation
from spanledger.billing.models import (
    CreditEntryRecord,
    CreditMeter,
    Customer,
    EventRecord,
    InvoiceRecord,
    Meter,
)
from spanledger.billing.models.credit_entry import UNLIMITED_CONDITION
from spanledger.billing.subscriptions.closed import check_open, format_moment

__all__ = [
    "CreditBalance",
    "add_entry",
    "balance",
    "balance_amount",
    "close_and_grant",
    "entries_for",
    "grant_once",
    "in_occurrence_order",
    "ledger_entries",
    "plan_grant_key",
    "plan_grant_written",
    "purchase_pack",
    "record_consumption",
    "to_entry",
    "uncovered_by_sequence",
]

_QUANTUM = Decimal(1).scaleb(-12)
_ZERO = Decimal(0)
_events = EventRecord.__table__.c


@dataclass(frozen=True, slots=True)
class CreditBalance:
    customer: str
    meter: str
    balance: Decimal
    unlimited: bool


def _q(value: Decimal) -> Decimal:
    # Credits are stored with 12 decimal places; a conversion like 1/3 credit is the only inexact case.
    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def to_entry(record: CreditEntryRecord) -> CreditEntry:
    return CreditEntry(
        EntryKind(record.kind),
        record.amount,
        record.occurred_at,
        source=GrantSource(record.source) if record.source else None,
        expires_at=record.expires_at,
        unlimited=record.unlimited,
        credits=record.credits,
        reason=record.reason,
    )


def ledger_entries(session: Session | Connection, customer_id: int, meter_id: int) -> list[CreditEntryRecord]:
    """The account's entries in ledger order (on a Core connection: rows with the same attributes)."""
    if isinstance(session, Session):
        statement = select(CreditEntryRecord)
        where = (CreditEntryRecord.customer_id == customer_id, CreditEntryRecord.meter_id == meter_id)
        return list(session.scalars(statement.where(*where).order_by(CreditEntryRecord.id)))
    table = CreditEntryRecord.__table__
    where = (table.c.customer_id == customer_id, table.c.meter_id == meter_id)
    rows = session.execute(select(table).where(*where).order_by(table.c.id)).all()
    return cast(list[CreditEntryRecord], rows)


def entries_for(records: Iterable[CreditEntryRecord]) -> list[CreditEntry]:
    return [to_entry(r) for r in records]


def in_occurrence_order(records: Iterable[CreditEntryRecord]) -> list[CreditEntry]:
    """The entries sorted in the order things occurred (:func:`.ledger.occurrence_key`), as the
    invoices replay them."""
    ordered = sorted(records, key=lambda r: occurrence_key(r.occurred_at, r.amount, r.kind, r.id))
    return entries_for(ordered)


def _ids(session: Session, customer: str, meter: str) -> tuple[int, int]:
    customer_id = session.scalar(select(Customer.id).where(Customer.external_id == customer))
    if customer_id is None:
        raise NotFoundError(f"no customer {customer!r}; see `spanledger customers list`")
    meter_id = session.scalar(select(Meter.id).where(Meter.name == meter))
    if meter_id is None:
        raise NotFoundError(f"no meter named {meter!r}; see `spanledger meters list`")
    return customer_id, meter_id


def balance(session: Session, customer: str, meter: str, at: datetime | None = None) -> CreditBalance:
    """The balance at ``at`` (default now; see :func:`balance_amount`), and whether an unlimited pack is
    live then."""
    customer_id, meter_id = _ids(session, customer, meter)
    moment = at or datetime.now(UTC)
    total = balance_amount(session.connection(), customer_id, meter_id, moment)
    grants = _unlimited_grants(session.connection(), {customer_id}, {meter_id})
    unlimited = unlimited_active(grants.get((customer_id, meter_id), []), moment)
    return CreditBalance(customer, meter, total, unlimited)


def balance_amount(connection: Connection, customer_id: int, meter_id: int, at: datetime) -> Decimal:
    """The sum of the account's entries, except grants dated after ``at``.

    A grant dated later (``credits grant --at``, a pack bought ``--at`` a later date, the plan credits of a
    period that has not started) cannot be drawn on before its date (the replay adds it to the buckets only
    then), so it does not count yet. Every other entry counts whatever its date: usage and expiries, and
    the adjustments invoices write (an overage settlement is dated at the end of the window it billed, and
    the balance shows it as soon as the invoice is finalized).
    """
    entry = CreditEntryRecord
    total = connection.scalar(
        select(func.sum(entry.amount)).where(
            entry.customer_id == customer_id,
            entry.meter_id == meter_id,
            (entry.occurred_at <= at) | (entry.kind != EntryKind.GRANT.value),
        )
    )
    return Decimal(total or 0)


def add_entry(
    session: Session,
    customer_id: int,
    meter_id: int,
    entry: CreditEntry,
    *,
    idempotency_key: str | None = None,
    event_sequence: int | None = None,
    pack: CreditPack | None = None,
) -> CreditEntryRecord | None:
    """Append ``entry``; with an ``idempotency_key`` already used, append nothing and return ``None``."""
    if idempotency_key is not None:
        existing = session.scalar(
            select(CreditEntryRecord.id).where(CreditEntryRecord.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return None
    record = CreditEntryRecord(
        customer_id=customer_id,
        meter_id=meter_id,
        kind=entry.kind.value,
        amount=_q(entry.amount),
        credits=None if entry.credits is None else _q(entry.credits),
        occurred_at=entry.occurred_at,
        recorded_at=datetime.now(UTC),
        source=None if entry.source is None else entry.source.value,
        expires_at=entry.expires_at,
        unlimited=entry.unlimited,
        reason=entry.reason,
        event_sequence=event_sequence,
        pack_code=None if pack is None else pack.code,
        pack_price=None if pack is None else pack.price,
        pack_currency=None if pack is None else pack.currency,
        idempotency_key=idempotency_key,
    )
    session.add(record)
    session.flush()
    return record


def grant_once(
    session: Session, customer: str, meter: str, amount: Decimal, *, at: datetime, reason: str,
    expires_at: datetime | None = None, key: str | None = None,
) -> CreditEntryRecord | None:  # fmt: skip
    """A one-time grant (``credits grant``); ``key`` makes repeating it harmless. A grant dated inside
    a finalized invoice's billing is refused (it would change what that invoice's credits covered)."""
    if amount <= 0:
        raise ConflictError(f"a grant must add credits, not {amount}")
    if expires_at is not None and expires_at <= at:
        raise ConflictError(
            f"a grant must expire after it takes effect ({format_moment(at)}), "
            f"not at {format_moment(expires_at)}"
        )
    customer_id, meter_id = _ids(session, customer, meter)
    check_open(session, customer_id, at, f"granting {amount} credits to {customer!r}")
    entry = CreditEntry(
        EntryKind.GRANT, amount, at, source=GrantSource.ONE_TIME, expires_at=expires_at, reason=reason
    )
    return add_entry(session, customer_id, meter_id, entry, idempotency_key=key)


def purchase_pack(session: Session, customer: str, pack: CreditPack, *, at: datetime) -> CreditEntryRecord:
    """Record the purchase of ``pack`` (a top-up); its price is billed on the period's invoice, so a
    purchase dated inside a finalized invoice's billing is refused (it would never be billed)."""
    customer_id, meter_id = _ids(session, customer, pack.meter)
    check_open(session, customer_id, at, f"buying pack {pack.code!r} for {customer!r}")
    record = add_entry(session, customer_id, meter_id, purchase_entry(pack, at), pack=pack)
    assert record is not None
    return record


def plan_grant_key(customer_id: int, meter_id: int, period_key: str, plan: str) -> str:
    """The idempotency key of ``plan``'s grant for the grant period ``period_key``: one per plan and
    period, so two plans of one month (a mid-month switch) grant each, and a re-run grants nothing."""
    return f"grant:{customer_id}:{meter_id}:{period_key}:{plan}"


def plan_grant_written(session: Session, customer_id: int, meter_id: int, period_key: str, plan: str) -> bool:
    """Whether ``plan``'s grant for ``period_key`` is in the ledger (a grant written before grants were
    keyed per plan, ``grant:customer:meter:period``, stands for every plan of its period)."""
    keys = [
        plan_grant_key(customer_id, meter_id, period_key, plan),
        f"grant:{customer_id}:{meter_id}:{period_key}",
    ]
    return (
        session.scalar(select(CreditEntryRecord.id).where(CreditEntryRecord.idempotency_key.in_(keys)))
        is not None
    )


def close_and_grant(
    session: Session,
    customer_id: int,
    meter_id: int,
    *,
    period_key: str,
    period_start: datetime,
    period_end: datetime,
    credits: Decimal,
    rollover_limit: Decimal,
    plan: str,
    granted_at: datetime | None = None,
) -> None:
    """Close the previous grant period (expiry + rollover) and grant ``plan``'s credits for this one,
    each exactly once. The grant occurs at ``granted_at`` (default: the period start; a plan that
    starts mid-period grants when it starts) and expires at the period end."""
    entries = in_occurrence_order(ledger_entries(session, customer_id, meter_id))
    # Earlier closes that late usage has since drawn on (if ingest did not already correct them).
    correction = _expiry_correction_entry(entries)
    if correction is not None:
        add_entry(session, customer_id, meter_id, correction)
    closing = close_grant_period(
        entries, period_start, rollover_limit=rollover_limit, next_expires_at=period_end
    )
    for index, entry in enumerate(closing):
        add_entry(
            session,
            customer_id,
            meter_id,
            entry,
            idempotency_key=f"close:{customer_id}:{meter_id}:{period_key}:{index}",
        )
    if plan_grant_written(session, customer_id, meter_id, period_key, plan):
        return
    grant = CreditEntry(
        EntryKind.GRANT, credits, granted_at or period_start, source=GrantSource.PLAN, expires_at=period_end,
        reason=f"plan {plan} credits for {period_key}",
    )  # fmt: skip
    add_entry(
        session, customer_id, meter_id, grant,
        idempotency_key=plan_grant_key(customer_id, meter_id, period_key, plan),
    )  # fmt: skip


_meters = Meter.__table__.c
# Built once: building the statement cost more than running it, once per ingest transaction.
_CREDIT_METERS = select(
    CreditMeter.__table__.c.units_per_credit, _meters.id, _meters.name, _meters.aggregation, _meters.field,
    _meters.event_name, _meters.filter,
).join(Meter.__table__, _meters.id == CreditMeter.__table__.c.meter_id)


def record_consumption(
    connection: Connection, sequences: Sequence[int], *, merged: Sequence[int] = ()
) -> int:
    """Append consumption entries on every credit meter for new events ``sequences`` and re-stored
    (merged) events ``merged``, in the caller's transaction. Returns the number of entries written.

    A merged event is brought to what it consumes now, from the entries already stored for it: its
    customer's account gets the difference (a second record that adds token counts), and an account
    it no longer belongs to (an unattributed event now attributed) gets back what it consumed there.
    So each event's consumption sits once, on its current customer, whatever order its records came in.
    Usage of a period whose credits were already closed gets its expiry corrected (:func:`.ledger.
    expiry_correction`), so the balance stays the sum of the entries.
    """
    every = [*sequences, *merged]
    if not every:
        return 0
    credit_meters = connection.execute(_CREDIT_METERS).all()
    entries: list[dict[str, Any]] = []
    recorded_at = datetime.now(UTC)

    def append(customer_id: int, meter_id: int, entry: CreditEntry, sequence: int) -> None:
        entries.append(
            {
                "customer_id": customer_id, "meter_id": meter_id, "kind": entry.kind.value,
                "amount": entry.amount, "credits": entry.credits, "occurred_at": entry.occurred_at,
                "recorded_at": recorded_at, "unlimited": False, "reason": entry.reason,
                "event_sequence": sequence,
            }
        )  # fmt: skip

    # Each meter's rows of the batch first, so the unlimited grants of every account they touch are
    # read in one query (through the partial index of unlimited grants, whatever the ledger's length).
    counted: list[_MeterRows] = []
    for units_per_credit, meter_id, name, aggregation, field, event_name, meter_filter in credit_meters:
        definition = MeterDefinition.parse(
            name, aggregation, field, event_name=event_name, filter=meter_filter
        )
        if definition.aggregation is Aggregation.COUNT:
            value = None
        elif definition.aggregation is Aggregation.SUM and definition.field:
            value = resolve_field(definition.field).numeric_expression()
        else:
            continue
        columns = [_events.sequence, _events.customer_id, _events.occurred_at, Customer.external_id]
        statement = (
            select(*columns, *([value] if value is not None else []))
            .select_from(EventRecord.__table__.join(Customer.__table__, Customer.id == _events.customer_id))
            .where(_events.sequence.in_(every), _events.event_name == definition.event_name)
        )
        condition = compile_filter(definition.filter)
        if condition is not None:
            statement = statement.where(condition)
        rows = list(connection.execute(statement))
        consumed = _consumed_before(connection, meter_id, merged)
        counted.append(_MeterRows(units_per_credit, meter_id, name, value is None, rows, consumed))
    unlimited_grants = _unlimited_grants(
        connection,
        {row[1] for meter in counted for row in meter.rows},
        {meter.meter_id for meter in counted if meter.rows},
    )
    for units_per_credit, meter_id, name, counts_events, rows, consumed in counted:
        for row in rows:
            sequence, customer_id, occurred_at, external_id = row[0], row[1], row[2], row[3]
            quantity = Decimal(1) if counts_events else Decimal(row[4] or 0)
            accounts = consumed.pop(sequence, {})
            before = accounts.pop(customer_id, None)
            delta = _q(credits_for_usage(quantity, units_per_credit)) - (before.credits if before else 0)
            for other, gone in accounts.items():
                # Attributed since: the account it was consumed on gets it back, exactly.
                reason = f"event {sequence} attributed to {external_id}"
                append(other, meter_id, _reversal(gone, occurred_at, reason), sequence)
            if delta == 0:
                continue
            unlimited = unlimited_active(unlimited_grants.get((customer_id, meter_id), ()), occurred_at)
            entry = consumption_entry(delta, occurred_at, unlimited=unlimited, reason=f"event {sequence}")
            append(customer_id, meter_id, entry, sequence)
        for sequence, accounts in consumed.items():
            # A merged event this meter no longer counts (its filter stopped matching): undo it.
            for customer_id, gone in accounts.items():
                reason = f"event {sequence} no longer counts on {name}"
                append(customer_id, meter_id, _reversal(gone, gone.occurred_at, reason), sequence)
    if entries:
        connection.execute(CreditEntryRecord.__table__.insert(), entries)
        _correct_expiries(connection, entries, recorded_at)
    return len(entries)


class _MeterRows(NamedTuple):
    """A credit meter and the batch's events it counts (sequence, customer id, occurred at, external
    id[, value]), with what the merged ones consumed on it before."""

    units_per_credit: Decimal
    meter_id: int
    name: str
    counts_events: bool
    rows: list[Any]
    consumed: dict[int, dict[int, _Consumed]]


@dataclass(frozen=True, slots=True)
class _Consumed:
    """What one event consumed so far on one account: credits, balance effect, when it occurred."""

    credits: Decimal
    amount: Decimal
    occurred_at: datetime


def _reversal(consumed: _Consumed, occurred_at: datetime, reason: str) -> CreditEntry:
    # A consumption entry of the opposite sign: the account's balance and the event's net
    # consumption on it both return to what they were before the event.
    return CreditEntry(
        EntryKind.CONSUMPTION, -consumed.amount, occurred_at, credits=-consumed.credits, reason=reason
    )


def _consumed_before(
    connection: Connection, meter_id: int, sequences: Sequence[int]
) -> dict[int, dict[int, _Consumed]]:
    """event → customer → what the (re-stored) events ``sequences`` consumed on ``meter_id`` so far,
    on every account (non-zero only)."""
    if not sequences:
        return {}
    rows = connection.execute(
        select(
            CreditEntryRecord.event_sequence, CreditEntryRecord.customer_id,
            func.sum(CreditEntryRecord.credits), func.sum(CreditEntryRecord.amount),
            func.min(CreditEntryRecord.occurred_at),
        )
        .where(
            CreditEntryRecord.event_sequence.in_(list(sequences)),
            CreditEntryRecord.meter_id == meter_id,
            CreditEntryRecord.kind == EntryKind.CONSUMPTION.value,
        )
        .group_by(CreditEntryRecord.event_sequence, CreditEntryRecord.customer_id)
    )  # fmt: skip
    result: dict[int, dict[int, _Consumed]] = {}
    for sequence, customer_id, credits, amount, occurred_at in rows:
        consumed = _Consumed(Decimal(credits or 0), Decimal(amount or 0), occurred_at)
        if consumed.credits or consumed.amount:
            result.setdefault(sequence, {})[customer_id] = consumed
    return result


_CORRECTION_REASON = "expiry corrected: usage recorded after the close used credits it expired"


def _expiry_correction_entry(entries: Sequence[CreditEntry]) -> CreditEntry | None:
    """The expiry correction ``entries`` (in occurrence order) need, dated at their last close."""
    correction = expiry_correction(entries)
    if correction == 0:
        return None
    last_close = max(e.occurred_at for e in entries if e.kind is EntryKind.EXPIRY)
    return CreditEntry(EntryKind.EXPIRY, _q(correction), last_close, reason=_CORRECTION_REASON)


def _correct_expiries(connection: Connection, written: list[dict[str, Any]], recorded_at: datetime) -> None:
    """Append an expiry correction to each account whose new entries occurred before one of its
    period closes (usage recorded late for a period whose leftover credits already expired).

    Cheap for on-time usage: a close is written by the invoice run of a billing month, at that
    month's start, so an account is only looked at when its customer has an invoice whose period
    starts after the usage occurred (one indexed query per batch). Anything this misses (the rare
    close of a month whose run was skipped) is corrected by the next close (:func:`close_and_grant`).
    """
    earliest: dict[tuple[int, int], datetime] = {}
    for row in written:
        key = (row["customer_id"], row["meter_id"])
        earliest[key] = min(earliest.get(key, row["occurred_at"]), row["occurred_at"])
    latest_start = dict(
        connection.execute(
            select(InvoiceRecord.customer_id, func.max(InvoiceRecord.period_start))
            .where(InvoiceRecord.customer_id.in_({customer_id for customer_id, _ in earliest}))
            .group_by(InvoiceRecord.customer_id)
        ).all()
    )
    for (customer_id, meter_id), occurred_at in earliest.items():
        if customer_id not in latest_start or occurred_at >= latest_start[customer_id]:
            continue  # no month run since this usage occurred: the common, on-time case
        ledger = in_occurrence_order(ledger_entries(connection, customer_id, meter_id))
        entry = _expiry_correction_entry(ledger)
        if entry is None:
            continue
        connection.execute(
            CreditEntryRecord.__table__.insert(),
            {
                "customer_id": customer_id, "meter_id": meter_id, "kind": entry.kind.value,
                "amount": entry.amount, "occurred_at": entry.occurred_at, "recorded_at": recorded_at,
                "unlimited": False, "reason": entry.reason,
            },
        )  # fmt: skip


_entries = CreditEntryRecord.__table__.c
_UNLIMITED_GRANTS = select(
    _entries.customer_id, _entries.meter_id, _entries.kind, _entries.occurred_at, _entries.expires_at
).where(
    text(UNLIMITED_CONDITION),  # word for word the partial index's condition
    _entries.customer_id.in_(bindparam("customer_ids", expanding=True)),
    _entries.meter_id.in_(bindparam("meter_ids", expanding=True)),
)


def _unlimited_grants(
    connection: Connection, customer_ids: set[int], meter_ids: set[int]
) -> dict[tuple[int, int], list[CreditEntry]]:
    """(customer, meter) → the account's unlimited grants, for every account of ``customer_ids`` ×
    ``meter_ids``: one query through ``ix_credit_entries_unlimited``, which holds only those grants."""
    if not customer_ids or not meter_ids:
        return {}
    rows = connection.execute(
        _UNLIMITED_GRANTS, {"customer_ids": sorted(customer_ids), "meter_ids": sorted(meter_ids)}
    )
    result: dict[tuple[int, int], list[CreditEntry]] = {}
    for customer_id, meter_id, kind, occurred_at, expires_at in rows:
        entry = CreditEntry(EntryKind(kind), _ZERO, occurred_at, expires_at=expires_at, unlimited=True)
        result.setdefault((customer_id, meter_id), []).append(entry)
    return result


def uncovered_by_sequence(session: Session, customer_id: int, meter_id: int) -> dict[int, Decimal]:
    """For each consumed event: the credits of it that no grant covered (the overage)."""
    records = sorted(
        ledger_entries(session, customer_id, meter_id),
        key=lambda r: occurrence_key(r.occurred_at, r.amount, r.kind, r.id),
    )
    state = replay(entries_for(records))
    result: dict[int, Decimal] = {}
    for index, left in state.uncovered.items():
        sequence = records[index].event_sequence
        if sequence is not None:
            result[sequence] = result.get(sequence, Decimal(0)) + left
    return result
