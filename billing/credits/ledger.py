"""The credits ledger: append-only entries, balances derived from them (pure).

Every change to a customer's credits for a meter is one :class:`CreditEntry`; nothing is ever updated
or deleted. ``amount`` is the entry's signed effect on the balance, so the balance is the plain sum of
amounts (what SQL computes) and :func:`replay` explains *which* credits were used:

- ``grant`` (+): from a plan each period (``source=plan``, expires at the end of the grant period),
  one-time (``one_time``) or a purchased pack (``purchase``; survives period resets, expires only if the
  pack says so). An unlimited pack is a grant of 0 with ``unlimited=True`` until ``expires_at``.
- ``consumption`` (−): usage converted to credits (e.g. 1 credit = 1,000 tokens), written in the same
  transaction as the events, so the balance is exact as soon as they commit. While an unlimited grant
  is live the consumption is recorded with its ``credits`` but an ``amount`` of 0.
- ``expiry`` (−) and ``rollover`` (+): written when a grant period closes; unused plan credits up to
  the plan's rollover limit come back as a rollover grant valid for the next period.
- ``adjustment`` (±, with a reason): manual corrections, and the settlement of an overage that an
  invoice billed in money (which brings a negative balance back to zero).

Consumption uses the credits that expire first (plan credits before purchased ones). A balance may go
negative when the plan allows overage; the uncovered part is the overage the invoice bills.

Entries are replayed in the order things *occurred* (:func:`occurrence_key`), as the invoices do:
an event that arrives late still draws on the credits live when it occurred. An ``expiry`` entry's
amount is what was left when its period closed; usage of that period recorded after the close used
part of it, so :func:`expiry_correction` gives the expiry entry to append (``+``: those credits were
used, not lost) that keeps the balance — the plain sum — equal to what the replay says is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from spanledger.billing.pricing import InvalidPriceError

__all__ = [
    "CreditBucket",
    "CreditEntry",
    "EntryKind",
    "GrantSource",
    "LedgerReplay",
    "close_grant_period",
    "consumption_entry",
    "credits_for_usage",
    "expiry_correction",
    "occurrence_key",
    "replay",
    "unlimited_active",
]

_ZERO = Decimal(0)


class EntryKind(StrEnum):
    GRANT = "grant"
    CONSUMPTION = "consumption"
    EXPIRY = "expiry"
    ROLLOVER = "rollover"
    ADJUSTMENT = "adjustment"


class GrantSource(StrEnum):
    PLAN = "plan"
    ONE_TIME = "one_time"
    PURCHASE = "purchase"


@dataclass(frozen=True, slots=True)
class CreditEntry:
    """One ledger entry. ``amount`` is the signed change of the balance."""

    kind: EntryKind
    amount: Decimal
    occurred_at: datetime
    source: GrantSource | None = None
    expires_at: datetime | None = None
    unlimited: bool = False
    #: For consumption: the usage's value in credits, also when an unlimited grant made ``amount`` 0.
    credits: Decimal | None = None
    reason: str | None = None


@dataclass(slots=True)
class CreditBucket:
    """Credits from one positive entry that are still unused."""

    entry_index: int
    source: GrantSource | None
    remaining: Decimal
    expires_at: datetime | None
    unlimited: bool = False
    #: When the credits become usable: the entry's date (a grant may be dated later than it is written).
    starts_at: datetime | None = None

    def live_at(self, moment: datetime) -> bool:
        if self.starts_at is not None and moment < self.starts_at:
            return False
        return self.expires_at is None or moment < self.expires_at


@dataclass(frozen=True, slots=True)
class LedgerReplay:
    """The ledger replayed in order: open buckets, the deficit, and what each debit left uncovered."""

    balance: Decimal
    deficit: Decimal
    buckets: tuple[CreditBucket, ...]
    #: entry index → credits of that consumption/debit that no bucket covered (the overage).
    uncovered: dict[int, Decimal] = field(default_factory=dict)
    #: Credits the expiry entries actually removed (what was left of the buckets they closed).
    expired: Decimal = _ZERO

    def available_at(self, moment: datetime) -> Decimal:
        """Credits still usable at ``moment`` (unexpired buckets, minus the deficit)."""
        live = sum((b.remaining for b in self.buckets if b.live_at(moment) and not b.unlimited), _ZERO)
        return live - self.deficit


def credits_for_usage(quantity: Decimal, units_per_credit: Decimal) -> Decimal:
    """Usage in meter units converted to credits, exactly (12,500 tokens at 1,000/credit → 12.5)."""
    if units_per_credit <= 0:
        raise InvalidPriceError(f"units per credit must be positive, not {units_per_credit}")
    if quantity < 0:
        raise InvalidPriceError(f"usage cannot be negative ({quantity})")
    return quantity / units_per_credit


def unlimited_active(entries: Sequence[CreditEntry], moment: datetime) -> bool:
    """Whether an unlimited grant covers usage that occurred at ``moment``."""
    return any(
        entry.unlimited
        and entry.kind is EntryKind.GRANT
        and entry.occurred_at <= moment
        and (entry.expires_at is None or moment < entry.expires_at)
        for entry in entries
    )


def consumption_entry(
    credits: Decimal, occurred_at: datetime, *, unlimited: bool = False, reason: str | None = None
) -> CreditEntry:
    """The consumption entry for usage worth ``credits`` (amount 0 under an unlimited grant)."""
    return CreditEntry(
        EntryKind.CONSUMPTION,
        _ZERO if unlimited else -credits,
        occurred_at,
        credits=credits,
        reason=reason,
    )


def _draw(buckets: list[CreditBucket], amount: Decimal, moment: datetime) -> Decimal:
    """Take ``amount`` from live buckets, soonest-expiring first; return what could not be covered."""
    order = sorted(
        (b for b in buckets if b.remaining > 0 and not b.unlimited and b.live_at(moment)),
        key=lambda b: (b.expires_at is None, b.expires_at or moment, b.entry_index),
    )
    for bucket in order:
        if amount <= 0:
            break
        taken = min(bucket.remaining, amount)
        bucket.remaining -= taken
        amount -= taken
    return amount


def replay(entries: Sequence[CreditEntry]) -> LedgerReplay:
    """Replay ``entries`` in ledger (insertion) order."""
    buckets: list[CreditBucket] = []
    deficit = _ZERO
    balance = _ZERO
    uncovered: dict[int, Decimal] = {}
    expired = _ZERO
    for index, entry in enumerate(entries):
        balance += entry.amount
        if entry.kind is EntryKind.EXPIRY:
            # An expiry removes what is left of every bucket that expired by the time it was written.
            for bucket in buckets:
                if bucket.expires_at is not None and bucket.expires_at <= entry.occurred_at:
                    expired += bucket.remaining
                    bucket.remaining = _ZERO
            continue
        if entry.amount > 0 or (entry.unlimited and entry.kind is EntryKind.GRANT):
            credit = entry.amount
            paid = min(deficit, credit)
            deficit -= paid
            credit -= paid
            if credit > 0 or entry.unlimited:
                buckets.append(
                    CreditBucket(
                        index, entry.source, credit, entry.expires_at, entry.unlimited, entry.occurred_at
                    )
                )
        elif entry.amount < 0:
            left = _draw(buckets, -entry.amount, entry.occurred_at)
            if left > 0:
                deficit += left
                uncovered[index] = left
    open_buckets = tuple(b for b in buckets if b.remaining > 0 or b.unlimited)
    return LedgerReplay(balance, deficit, open_buckets, uncovered, expired)


def occurrence_key(occurred_at: datetime, amount: Decimal, kind: str, entry_id: int) -> tuple[Any, ...]:
    """Sort key of the ledger in the order things occurred (the order :func:`replay` is given).

    At one instant credits come before debits (a grant for a month occurs at its start, before that
    month's usage); among credits an overage settlement first, so the month it settles is paid
    before the next month's grant, written at the same instant, is used; then insertion order.
    """
    return (occurred_at, amount <= 0, kind != EntryKind.ADJUSTMENT.value, entry_id)


def expiry_correction(entries: Sequence[CreditEntry]) -> Decimal:
    """The amount of the expiry entry to append so that the expiry entries of ``entries`` (in
    occurrence order) remove exactly what was left when their periods closed; 0 when they do.

    Positive when usage recorded after a close turned out to have used credits the close had
    counted as expired (the balance was too low by that much).
    """
    state = replay(entries)
    written = sum((e.amount for e in entries if e.kind is EntryKind.EXPIRY), _ZERO)
    return -state.expired - written


def close_grant_period(
    entries: Sequence[CreditEntry],
    closed_at: datetime,
    *,
    rollover_limit: Decimal,
    next_expires_at: datetime | None,
) -> list[CreditEntry]:
    """The expiry and rollover entries to append when a grant period ends at ``closed_at``.

    Every bucket that expired by ``closed_at`` loses its remaining credits; of the unused *plan*
    credits, up to ``rollover_limit`` come back as a rollover valid until ``next_expires_at``.
    Returns ``[]`` when nothing expires.
    """
    state = replay(entries)
    expiring = [
        b for b in state.buckets
        if not b.unlimited and b.expires_at is not None and b.expires_at <= closed_at and b.remaining > 0
    ]  # fmt: skip
    total = sum((b.remaining for b in expiring), _ZERO)
    if total <= 0:
        return []
    unused_plan = sum((b.remaining for b in expiring if b.source is GrantSource.PLAN), _ZERO)
    carried = min(unused_plan, max(rollover_limit, _ZERO))
    result = [CreditEntry(EntryKind.EXPIRY, -total, closed_at, reason="unused credits expired")]
    if carried > 0:
        result.append(
            CreditEntry(
                EntryKind.ROLLOVER,
                carried,
                closed_at,
                source=GrantSource.PLAN,
                expires_at=next_expires_at,
                reason=f"rolled over (limit {rollover_limit})",
            )
        )
    return result
