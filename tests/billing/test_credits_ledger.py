from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from spanledger.billing.credits import (
    CreditEntry,
    CreditPack,
    EntryKind,
    GrantSource,
    close_grant_period,
    consumption_entry,
    credits_for_usage,
    purchase_entry,
    replay,
    unlimited_active,
)
from spanledger.billing.pricing import InvalidPriceError

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
JAN = datetime(2027, 1, 1, tzinfo=UTC)


def grant(amount, at=NOV, expires=DEC, source=GrantSource.PLAN):
    return CreditEntry(EntryKind.GRANT, D(amount), at, source=source, expires_at=expires)


def use(credits, at=NOV + timedelta(days=3)):
    return consumption_entry(D(credits), at)


def balance(entries):
    return sum((e.amount for e in entries), D(0))


def test_one_credit_is_a_thousand_tokens():
    assert credits_for_usage(D(12_500), D(1000)) == D("12.5")
    with pytest.raises(InvalidPriceError):
        credits_for_usage(D(1), D(0))


def test_balance_is_the_sum_of_entries_and_replay_agrees():
    entries = [grant(100), use(30), use(20)]
    state = replay(entries)
    assert state.balance == balance(entries) == D(50)
    assert state.available_at(NOV + timedelta(days=4)) == D(50)
    assert state.uncovered == {}


def test_plan_credits_are_used_before_purchased_ones_which_survive_the_reset():
    pack = CreditPack("starter", "Starter", "tokens", D(10_000), D(29))
    entries = [grant(100), purchase_entry(pack, NOV), use(150)]
    closing = close_grant_period(entries, DEC, rollover_limit=D(0), next_expires_at=JAN)
    assert closing == []  # the plan credits were used up first; the pack has 9,950 left, not expiring
    assert replay(entries).balance == D(9_950)


def test_rollover_carries_unused_plan_credits_up_to_the_limit():
    entries = [grant(100), use(30)]
    closing = close_grant_period(entries, DEC, rollover_limit=D(50), next_expires_at=JAN)
    assert [(e.kind, e.amount, e.expires_at) for e in closing] == [
        (EntryKind.EXPIRY, D(-70), None),
        (EntryKind.ROLLOVER, D(50), JAN),
    ]
    entries += closing
    assert replay(entries).balance == D(50)
    # The rolled-over credits are plan credits: at the next close they count against the same limit.
    entries += [grant(100, DEC, JAN)]
    again = close_grant_period(entries, JAN, rollover_limit=D(50), next_expires_at=None)
    assert [e.amount for e in again] == [D(-150), D(50)]


def test_consumption_beyond_the_balance_is_overage_and_goes_negative():
    entries = [grant(10), use(25)]
    state = replay(entries)
    assert state.balance == D(-15)
    assert state.uncovered == {1: D(15)}
    # An invoice that bills the overage settles it with an adjustment; later grants are then whole.
    entries += [CreditEntry(EntryKind.ADJUSTMENT, D(15), DEC, reason="overage billed on USD-000001")]
    entries += [grant(100, DEC, JAN)]
    assert replay(entries).balance == D(100)


def test_expired_credits_cannot_be_consumed_even_before_the_expiry_entry():
    entries = [grant(10), use(5, at=DEC + timedelta(hours=1))]
    assert replay(entries).uncovered == {1: D(5)}


def test_negative_adjustment_draws_like_consumption():
    entries = [grant(10, expires=None, source=GrantSource.ONE_TIME)]
    entries.append(CreditEntry(EntryKind.ADJUSTMENT, D(-4), NOV, reason="support correction"))
    assert replay(entries).balance == D(6)


def test_unlimited_pack_covers_usage_without_changing_the_balance():
    enterprise = CreditPack("enterprise", "Enterprise", "tokens", None, D(999), valid_days=30)
    entry = purchase_entry(enterprise, NOV)
    assert (entry.unlimited, entry.amount, entry.expires_at) == (True, D(0), NOV + timedelta(days=30))
    assert unlimited_active([entry], NOV + timedelta(days=1))
    assert not unlimited_active([entry], NOV + timedelta(days=30))
    consumed = consumption_entry(D(500), NOV, unlimited=True)
    assert (consumed.amount, consumed.credits) == (D(0), D(500))
    assert replay([entry, consumed]).balance == D(0)


def test_credit_packs_from_the_issue_and_bad_packs():
    packs = [
        CreditPack("starter", "Starter", "tokens", D(10_000), D(29)),
        CreditPack("pro", "Pro", "tokens", D(100_000), D(199)),
        CreditPack("enterprise", "Enterprise", "tokens", None, D(999), valid_days=30),
    ]
    assert [(p.unlimited, p.price) for p in packs] == [(False, D(29)), (False, D(199)), (True, D(999))]
    with pytest.raises(InvalidPriceError, match="valid_days"):
        CreditPack("x", "X", "tokens", None, D(1))
    with pytest.raises(InvalidPriceError, match="no credits"):
        CreditPack("x", "X", "tokens", D(0), D(1))
