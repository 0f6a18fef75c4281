"""Credits: the append-only ledger (pure replay, expiry, rollover), packs, and the storage service."""

from spanledger.billing.credits.ledger import (
    CreditBucket,
    CreditEntry,
    EntryKind,
    GrantSource,
    LedgerReplay,
    close_grant_period,
    consumption_entry,
    credits_for_usage,
    expiry_correction,
    occurrence_key,
    replay,
    unlimited_active,
)
from spanledger.billing.credits.packs import CreditPack, purchase_entry, sold_pack_name

__all__ = [
    "CreditBucket",
    "CreditEntry",
    "CreditPack",
    "EntryKind",
    "GrantSource",
    "LedgerReplay",
    "close_grant_period",
    "consumption_entry",
    "credits_for_usage",
    "expiry_correction",
    "occurrence_key",
    "purchase_entry",
    "replay",
    "sold_pack_name",
    "unlimited_active",
]
