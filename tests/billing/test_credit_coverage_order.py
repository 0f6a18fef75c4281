"""The invoices' credit coverage and the credits service replay the ledger in one order: the shared
:func:`spanledger.billing.credits.ledger.occurrence_key` (a copy could drift apart silently)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from spanledger.billing.credits import ledger
from spanledger.billing.credits.ledger import EntryKind, occurrence_key
from spanledger.billing.invoices import coverage

AT = datetime(2026, 12, 1, tzinfo=UTC)
BEFORE = datetime(2026, 11, 30, tzinfo=UTC)


def test_coverage_sorts_with_the_ledgers_occurrence_key():
    assert coverage.occurrence_key is ledger.occurrence_key
    assert not hasattr(coverage, "_order")


def test_at_one_instant_a_settlement_then_other_credits_then_debits_then_insertion_order():
    keys = {
        "consumption": occurrence_key(AT, D(-5), EntryKind.CONSUMPTION.value, 1),
        "grant": occurrence_key(AT, D(100), EntryKind.GRANT.value, 2),
        "settlement": occurrence_key(AT, D(5), EntryKind.ADJUSTMENT.value, 3),
        "pending settlement": occurrence_key(AT, D(5), EntryKind.ADJUSTMENT.value, -1),
        "earlier usage": occurrence_key(BEFORE, D(-1), EntryKind.CONSUMPTION.value, 9),
    }
    assert sorted(keys, key=keys.__getitem__) == [
        "earlier usage", "pending settlement", "settlement", "grant", "consumption",
    ]  # fmt: skip
