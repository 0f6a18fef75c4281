"""Cost Insights and the margin report from rollups and stored line splits show exactly the figures the
event scans showed (:mod:`cost_insights_reference` keeps the old computation), on a ledger with
finalized, paid and draft invoices, late usage, a meter the rollups cannot answer, a count meter on a
window anchored mid-hour, events ingested after a draft, unknown models and costs in EUR."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from alembic import command
from cost_insights_reference import old_admin_view, old_margin_report
from portal_ledger import CATALOG, NOV, NOW, OCT, call, october_and_november
from sqlalchemy import event, select

from spanledger.billing.catalog import apply_catalog, parse_catalog
from spanledger.billing.customers import create_customer
from spanledger.billing.ingest import ingest
from spanledger.billing.invoices import finalize, list_invoices, run_invoices
from spanledger.billing.margin_report import margin_report
from spanledger.billing.migrate import alembic_config, upgrade
from spanledger.billing.models import InvoiceLineWeight
from spanledger.billing.portal import admin_view
from spanledger.billing.subscriptions.service import subscribe
from spanledger.billing.usage_event import UsageEvent

ANCHOR = OCT + timedelta(hours=14, minutes=23)


def _catalog() -> dict:
    catalog = copy.deepcopy(CATALOG)
    catalog["meters"].append({"name": "requests", "aggregation": "count"})
    catalog["plans"].append({
        "code": "metered", "name": "Metered", "base_fee": 5,
        "prices": [{"meter": "requests", "model": "per_unit", "unit_price": 0.37}],
    })  # fmt: skip
    catalog["price_overrides"] = [{
        "provider": "mistral", "model": "mistral-large", "valid_from": "2026-09-01", "currency": "EUR",
        "input_per_million": 2, "output_per_million": 6,
    }]  # fmt: skip
    return catalog


def _mistral(key: str, customer: str, when: datetime, tokens: int) -> UsageEvent:
    return UsageEvent(
        dedupe_key=key, occurred_at=when, customer_external_id=customer, provider="mistral",
        request_model="mistral-large", response_model="mistral-large", input_tokens=tokens // 2,
        output_tokens=tokens - tokens // 2,
    )  # fmt: skip


def _unknown_model(key: str, customer: str, when: datetime) -> UsageEvent:
    return UsageEvent(dedupe_key=key, occurred_at=when, customer_external_id=customer, input_tokens=700)


def _extra_events() -> list[UsageEvent]:
    events = []
    for index in range(0, 50 * 24, 7):  # every 7 hours from October 1st, at :41
        when = OCT + timedelta(hours=index, minutes=41)
        if when >= NOW:
            break
        model = ("gpt-4o", "gpt-4o-mini", "gpt-4.1")[index % 3]
        events.append(call(f"counter-{index}", "counter", when, 300 + index, model=model))
        if index % 5 == 0:
            events.append(_mistral(f"mistral-counter-{index}", "counter", when, 5_000 + index))
        if index % 11 == 0:
            events.append(_unknown_model(f"unknown-{index}", "counter", when))
        if index % 13 == 0:
            events.append(_mistral(f"mistral-acme-{index}", "acme", when, 9_000))
    # The edges of the anchored windows (14:23) and of a ragged report window.
    for minute in (5, 22, 23, 59):
        events.append(
            call(f"edge-{minute}", "counter", ANCHOR.replace(minute=minute) + timedelta(days=31), 900)
        )
    return events


def _build(session) -> None:
    with session.begin():
        apply_catalog(session, parse_catalog(_catalog()))
        for customer in ("acme", "globex", "freeloader", "counter"):
            create_customer(session, customer)
        subscribe(session, "acme", "writer", start=OCT)
        subscribe(session, "globex", "agency", start=OCT)
        subscribe(session, "counter", "metered", start=ANCHOR)
        events = [e for e in october_and_november() if "evil" not in e.dedupe_key]
        ingest(session, events + _extra_events(), received_at=NOW)
    with session.begin():
        run_invoices(session, "2026-10")
    with session.begin():
        for invoice, _customer in list_invoices(session, period="2026-10", status="draft"):
            finalize(session, invoice.id)
    with session.begin():  # late usage for the finalized October, then November's drafts
        late = [call("late-acme", "acme", OCT + timedelta(days=20, hours=3), 50_000, model="gpt-4o-mini")]
        late.append(call("late-counter", "counter", ANCHOR + timedelta(days=3), 1_000))
        ingest(session, late, received_at=NOW)
    with session.begin():
        run_invoices(session, "2026-11")
    with session.begin():  # events after the drafts: in the rollups, not in the drafts' lines
        newer = [call(f"newer-{i}", c, NOV + timedelta(days=2, hours=i), 2_000)
                 for i in range(5) for c in ("acme", "counter", "globex")]  # fmt: skip
        newer.append(_mistral("newer-mistral", "acme", NOV + timedelta(days=4, hours=1), 8_000))
        ingest(session, newer, received_at=NOW)


@pytest.fixture
def ledger(session):
    _build(session)
    statuses = {invoice.status for invoice, _ in list_invoices(session)}
    assert statuses >= {"draft", "finalized"}
    session.rollback()


WINDOWS = [
    (OCT, NOW),
    # Ragged: the edge hours (an event at 07:41, one at 03:00) come from the events.
    (OCT + timedelta(hours=7, minutes=30), NOV + timedelta(days=2, hours=3, minutes=30)),
    (NOV, NOW),
    (OCT - timedelta(days=31), NOW + timedelta(days=31)),
]


@pytest.mark.parametrize("currency", ["USD", "EUR"])
@pytest.mark.parametrize("window", WINDOWS, ids=["oct-now", "ragged", "nov", "wide"])
def test_admin_view_equals_the_event_scan_to_the_cent(session, ledger, window, currency):
    start, end = window
    assert admin_view(session, start=start, end=end, currency=currency) == old_admin_view(
        session, start=start, end=end, currency=currency
    )


def test_the_ledger_exercises_every_path(session, ledger):
    view = admin_view(session, start=OCT, end=NOW)
    models = {row.key for row in view.by_model}
    assert {"mistral-large", "(unknown model)", "(base fee)", "gpt-4o", "gpt-4o-mini"} <= models
    assert view.by_customer and all(row.revenue or row.upstream_cost for row in view.by_customer)
    euro = admin_view(session, start=OCT, end=NOW, currency="EUR")
    assert {row.key: row.upstream_cost for row in euro.by_model if row.upstream_cost} == {
        "mistral-large": next(r.upstream_cost for r in euro.by_model if r.key == "mistral-large")
    }
    usd_mistral = next(r for r in view.by_model if r.key == "mistral-large")
    assert usd_mistral.upstream_cost == 0  # its costs are in EUR


@pytest.mark.parametrize("currency", ["USD", "EUR"])
@pytest.mark.parametrize("window", WINDOWS, ids=["oct-now", "ragged", "nov", "wide"])
def test_margin_report_per_customer_is_unchanged(session, ledger, window, currency):
    start, end = window
    new = margin_report(session, "customer", start=start, end=end, currency=currency)
    assert new == old_margin_report(session, "customer", start=start, end=end, currency=currency)


@pytest.mark.parametrize("by", ["model", "provider", "day", "week", "month"])
def test_margin_report_groups_keep_costs_and_move_revenue_by_cents_at_most(session, ledger, by):
    new = {row.key: row for row in margin_report(session, by, start=OCT, end=NOW)}
    old = {row.key: row for row in old_margin_report(session, by, start=OCT, end=NOW)}
    assert new.keys() == old.keys()
    assert {k: (r.upstream_cost, r.unknown_cost_events) for k, r in new.items()} == {
        k: (r.upstream_cost, r.unknown_cost_events) for k, r in old.items()
    }
    assert sum(r.revenue for r in new.values()) == sum(r.revenue for r in old.values())
    # Split per group now (once per line), per event before: rounding moves a few cents at most.
    assert all(abs(new[k].revenue - old[k].revenue) <= Decimal("0.10") for k in new)


def test_finalized_lines_are_split_from_stored_weights_not_events(session, ledger, engine):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    november_drafts = [i.id for i, _ in list_invoices(session, period="2026-11")]
    assert november_drafts
    event.listen(engine, "before_cursor_execute", record)
    try:
        admin_view(session, start=OCT, end=NOV)  # October only: finalized invoices, whole hours
    finally:
        event.remove(engine, "before_cursor_execute", record)
    reading_events = [s for s in statements if "usage_events" in s]
    # The one statement on events is the correction for costs not in USD (a partial index).
    assert len(reading_events) == 1 and "upstream_cost_currency <> 'USD'" in reading_events[0]
    assert any("invoice_line_weights" in s for s in statements)


def test_finalizing_stores_the_split_and_the_migration_backfills_it(session, ledger, engine):
    def stored() -> set[tuple]:
        rows = session.execute(select(InvoiceLineWeight)).scalars()
        return {(r.line_id, r.model, r.provider, r.day, r.weight, r.events) for r in rows}

    written = stored()
    session.rollback()
    assert written and all(weight >= 0 and events > 0 for *_, weight, events in written)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.stamp(config, "head")  # the fixture created the tables without migrations
        command.downgrade(config, "0902_quantity_text")
    upgrade(engine)
    assert stored() == written


def test_a_draft_split_takes_off_events_ingested_after_it(session, ledger):
    """The November drafts were computed before the "newer" events: their weights must not count them."""
    view = admin_view(session, start=NOV, end=NOW)
    reference = old_admin_view(session, start=NOV, end=NOW)
    assert view.by_day == reference.by_day
    day = (NOV + timedelta(days=2)).date().isoformat()
    assert any(row.key == day and row.revenue for row in view.by_day)


def test_a_window_with_no_whole_hour(session, ledger):
    start = NOV + timedelta(days=2, minutes=-10)  # 23:50 to 00:50, the "newer" event at 00:00 in it
    end = start + timedelta(minutes=60)
    for currency in ("USD", "EUR"):
        assert admin_view(session, start=start, end=end, currency=currency) == old_admin_view(
            session, start=start, end=end, currency=currency
        )
    assert margin_report(session, "model", start=start, end=end) == old_margin_report(
        session, "model", start=start, end=end
    )


@pytest.mark.parametrize(
    "window",
    [(None, None), (None, NOV + timedelta(days=3, minutes=30)), (OCT + timedelta(days=9, minutes=20), None)],
    ids=["open", "open-start", "open-end"],
)
@pytest.mark.parametrize("by", ["customer", "model", "day"])
def test_margin_report_with_open_bounds(session, ledger, window, by):
    start, end = window
    new = margin_report(session, by, start=start, end=end)
    old = old_margin_report(session, by, start=start, end=end)
    if by == "customer":
        assert new == old
    assert [(r.key, r.upstream_cost, r.unknown_cost_events) for r in new] == [
        (r.key, r.upstream_cost, r.unknown_cost_events) for r in old
    ]
    assert sum(r.revenue for r in new) == sum(r.revenue for r in old)
