"""A credit pack line says what was sold: the pack's name when it was bought, not the catalog's
name when the draft is computed (purchases recorded before names were kept: the catalog, else the code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from sqlalchemy import select
from test_invoices_support import add_plan, subscribe

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.credits import (
    CreditEntry,
    CreditPack,
    EntryKind,
    GrantSource,
    purchase_entry,
    sold_pack_name,
)
from spanledger.billing.credits.service import add_entry, purchase_pack
from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.models import Customer, InvoiceRecord, Meter

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def _catalog(pack_name: str) -> dict:
    return {
        "meters": [{"name": "tokens", "aggregation": "sum", "field": "total_tokens"}],
        "credit_meters": [{"meter": "tokens", "units_per_credit": 1000}],
        "credit_packs": [
            {"code": "starter", "name": pack_name, "meter": "tokens", "credits": 10000, "price": 29}
        ],
    }


def _pack(name: str) -> CreditPack:
    return CreditPack("starter", name, "tokens", D(10000), D(29))


def _pack_lines(session) -> list[tuple[str, D]]:
    with session.begin():
        run_invoices(session, "2026-11")
        invoice = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-11"))
        return [
            (line.description, line.amount)
            for line in invoice_lines(session, invoice)
            if line.kind == "credit_pack"
        ]


def test_the_purchase_entry_keeps_the_name_it_was_sold_under():
    entry = purchase_entry(_pack("Starter"), NOV)
    assert entry.reason == "purchased pack starter: Starter"
    assert sold_pack_name(entry.reason, "starter") == "Starter"
    assert sold_pack_name("purchased pack starter", "starter") is None  # recorded before names were kept
    assert sold_pack_name("purchased pack starter: Starter", "other") is None
    assert sold_pack_name(None, "starter") is None
    # A name too long for the ledger's reason column is left out (the catalog's name is shown).
    assert purchase_entry(_pack("S" * 600), NOV).reason == "purchased pack starter"


def test_renaming_a_pack_does_not_change_what_a_draft_says_was_sold(session):
    with session.begin():
        apply_catalog(session, parse_catalog(_catalog("Starter")))
        subscribe(session, "acme", add_plan(session, {"code": "free", "name": "Free", "base_fee": "0"}), NOV)
        purchase_pack(session, "acme", _pack("Starter"), at=NOV + timedelta(days=2))
    assert _pack_lines(session) == [("Credit pack Starter", D("29.00"))]
    with session.begin():
        apply_catalog(session, parse_catalog(_catalog("Starter (new)")))
        purchase_pack(session, "acme", _pack("Starter (new)"), at=NOV + timedelta(days=5))
    # The re-run draft: the first purchase as sold, the second under the new name.
    assert _pack_lines(session) == [
        ("Credit pack Starter", D("29.00")),
        ("Credit pack Starter (new)", D("29.00")),
    ]


def test_purchases_recorded_before_names_were_kept_show_the_catalog_name_or_the_code(session):
    with session.begin():
        apply_catalog(session, parse_catalog(_catalog("Starter")))
        subscribe(session, "acme", add_plan(session, {"code": "free", "name": "Free", "base_fee": "0"}), NOV)
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == "acme"))
        meter_id = session.scalar(select(Meter.id).where(Meter.name == "tokens"))
        for code, day in (("starter", 2), ("retired", 3)):
            legacy = CreditEntry(
                EntryKind.GRANT, D(10), NOV + timedelta(days=day), source=GrantSource.PURCHASE,
                reason=f"purchased pack {code}",
            )  # fmt: skip
            pack = CreditPack(code, code.title(), "tokens", D(10), D(1))
            add_entry(session, customer_id, meter_id, legacy, pack=pack)
    assert _pack_lines(session) == [("Credit pack Starter", D("1.00")), ("Credit pack retired", D("1.00"))]
