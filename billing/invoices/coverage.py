"""What credits paid for in a window of usage: credits, units and upstream cost (reads the ledger).

One rule serves the month's usage line and every later true-up of it (late events, merged tokens):
the ledger is replayed in the order things *occurred* — a plan grant for a month occurs at its start
even when the run that wrote it came after the month's events; at the same instant credits are added
before they are used, an overage settlement before a grant; then insertion order — and each
consumption entry of the window's events is covered by the credits live when its event occurred, or
left uncovered (the overage, billed in money and settled when the invoice is finalized).

Cost-plus prices: a credit pays for units, so it takes off the line the upstream cost *of the events
it covered*: each event's cost × the credits covered / the credits the event consumed. Usage split
over several models is thus exact; only within one event is the cost shared pro rata.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.credits.ledger import CreditEntry, EntryKind, occurrence_key, replay
from spanledger.billing.credits.service import ledger_entries, to_entry
from spanledger.billing.models import EventRecord

__all__ = ["CreditCoverage", "covered_units", "credit_coverage"]

_ZERO = Decimal(0)
_events = EventRecord.__table__.c


@dataclass(frozen=True, slots=True)
class CreditCoverage:
    """Credits the events consumed, the part grants covered, and the upstream cost of that part."""

    consumed: Decimal = _ZERO
    covered: Decimal = _ZERO
    covered_cost: Decimal = _ZERO


def covered_units(quantity: Decimal, coverage: CreditCoverage, units_per_credit: Decimal) -> Decimal:
    """Units of ``quantity`` the covered credits paid for (never more than the quantity)."""
    return max(_ZERO, min(quantity, coverage.covered * units_per_credit))


def credit_coverage(
    session: Session,
    customer_id: int,
    meter_id: int,
    sequences: Iterable[int],
    settlements: Sequence[tuple[datetime, Decimal]] = (),
) -> CreditCoverage:
    """The coverage of the events ``sequences`` on the credit meter ``meter_id`` (see the module doc).

    ``settlements`` are overage settlements (moment, credits) the draft being computed will write when
    it is finalized: they count as written, so the overage of late usage billed in money on this very
    draft is not also paid by this month's grant.
    """
    wanted = set(sequences)
    if not wanted:
        return CreditCoverage()
    rows: list[tuple[tuple[Any, ...], CreditEntry, int | None]] = [
        (occurrence_key(r.occurred_at, r.amount, r.kind, r.id), to_entry(r), r.event_sequence)
        for r in ledger_entries(session, customer_id, meter_id)
    ]
    for moment, credits in settlements:
        # Not written yet: id -1 (no row's) puts it first among the entries of its instant and kind.
        entry = CreditEntry(EntryKind.ADJUSTMENT, credits, moment, reason="overage settled on finalizing")
        rows.append((occurrence_key(moment, credits, EntryKind.ADJUSTMENT.value, -1), entry, None))
    rows.sort(key=lambda row: row[0])
    state = replay([entry for _, entry, _ in rows])
    consumed: dict[int, Decimal] = {}
    covered: dict[int, Decimal] = {}
    for index, (_, record, sequence) in enumerate(rows):
        if record.kind is not EntryKind.CONSUMPTION or sequence is None or sequence not in wanted:
            continue
        credits = record.credits if record.credits is not None else -record.amount
        consumed[sequence] = consumed.get(sequence, _ZERO) + credits
        covered[sequence] = covered.get(sequence, _ZERO) + credits - state.uncovered.get(index, _ZERO)
    costs = _event_costs(session, [s for s, credits in covered.items() if credits > 0])
    covered_cost = sum(
        (costs[s] * covered[s] / consumed[s] for s in costs if consumed[s] > 0),
        _ZERO,
    )
    return CreditCoverage(sum(consumed.values(), _ZERO), sum(covered.values(), _ZERO), covered_cost)


def _event_costs(session: Session, sequences: list[int]) -> dict[int, Decimal]:
    """Known upstream costs of the events ``sequences`` (an unknown cost covers nothing)."""
    result: dict[int, Decimal] = {}
    for start in range(0, len(sequences), 500):
        chunk = sequences[start : start + 500]
        rows = session.execute(
            select(_events.sequence, _events.upstream_cost).where(
                _events.sequence.in_(chunk), _events.upstream_cost.is_not(None)
            )
        )
        result.update({sequence: Decimal(cost) for sequence, cost in rows})
    return result
