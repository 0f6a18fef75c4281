"""The customer page over the test ledger: numbers checked against the ledger, nothing of cost or
margin, everything escaped, one 403 for every refused link."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from portal_ledger import EVIL, NOV, NOW, SECRET, money
from sqlalchemy import select

from spanledger.billing.invoices import invoice_lines, run_invoices
from spanledger.billing.meters import get_meter, meter_usage, to_definition
from spanledger.billing.models import EventRecord, InvoiceRecord
from spanledger.billing.portal import portal_url, require_secret_key, sign_portal_token

KEY = require_secret_key(SECRET)


def url(customer: str, expires=NOW + timedelta(days=7)) -> str:
    return portal_url("", KEY, customer, expires)


def by_testid(page: str, name: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(rf'data-testid="{name}">([^<]*)<', page)]


def test_the_page_shows_the_estimate_the_invoice_run_would_write(client, session):
    page = client.get(url("acme")).text
    [estimate] = by_testid(page, "estimate-total")
    with session.begin_nested() as savepoint:
        run_invoices(session, "2026-11")
        draft = session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-11",
                                                         InvoiceRecord.customer_id == 1))  # fmt: skip
        lines = invoice_lines(session, draft)
        expected_total, expected_lines = draft.total, [(line.description, line.amount) for line in lines]
        savepoint.rollback()
    assert estimate == money(expected_total)
    for description, amount in expected_lines:
        assert f"{html.escape(description)}</a>" in page or f"<td>{html.escape(description)}</td>" in page
        assert money(amount) in page
    # The preview wrote nothing.
    assert session.scalar(select(InvoiceRecord).where(InvoiceRecord.period == "2026-11")) is None


def test_usage_per_meter_and_model_match_the_meters(client, session):
    page = client.get(url("acme")).text
    session.rollback()
    definition = to_definition(get_meter(session, "tokens"))
    window = {"start": NOV, "end": NOV.replace(month=12), "customer": "acme"}
    [total] = meter_usage(session, definition, **window)
    usage_table = page.split('data-testid="usage"')[1].split("</table>")[0]
    assert f'<td>tokens</td><td class="num">{total.value.normalize():f}</td>' in usage_table
    by_model = page.split('data-testid="usage-by-model"')[1].split("</table>")[0]
    for row in meter_usage(session, definition, **window, group_by="model"):
        assert f'<td>{row.group}</td><td class="num">{row.value.normalize():f}</td>' in by_model
    # One bar per day with usage, each carrying the day's value.
    assert page.count("<rect") == 20
    assert "<title>2026-11-20: " in page


def test_past_invoices_with_their_lines_and_status(client, session, ledger):
    invoice = session.get(InvoiceRecord, ledger["acme"])
    lines = invoice_lines(session, invoice)
    other = session.get(InvoiceRecord, ledger["globex"])
    session.rollback()
    page = client.get(url("acme")).text
    assert by_testid(page, "invoice-status") == ["paid"]
    assert by_testid(page, "invoice-total") == [money(invoice.total)]
    for line in lines:
        assert html.escape(line.description) in page and money(line.amount) in page
    # Only acme's invoices: globex's number never appears.
    assert other.number not in page


def test_credits_balance_and_ledger(client):
    page = client.get(url("globex")).text
    assert by_testid(page, "credit-balance") == ["-760"]  # 19 November calls of 40,000 agent tokens
    ledger_table = page.split('data-testid="credit-ledger"')[1].split("</table>")[0]
    assert ledger_table.count("<tr>") == 1 + 25  # header + the latest 25 entries
    assert "plan credits for 2026-10" not in ledger_table  # older than the latest 25
    assert "plan credits are added when the invoice is prepared" in page


def _customer_pages(client, session, ledger):
    drillable = []
    for customer in ("acme", "globex"):
        invoice = session.get(InvoiceRecord, ledger[customer])
        drillable += [(customer, invoice.id, line.position) for line in invoice_lines(session, invoice)
                      if line.meter_snapshot]  # fmt: skip
    session.rollback()  # SQLite: a reader holds the write lock until its transaction ends
    pages = [client.get(url(c)).text for c in ("acme", "globex", EVIL)]
    for customer, invoice_id, position in drillable:
        link = url(customer).replace("/portal?", "/portal/requests?")
        pages.append(client.get(f"{link}&invoice={invoice_id}&line={position}").text)
    pages.append(
        client.get(url("acme").replace("/portal?", "/portal/requests?") + "&invoice=current&line=2").text
    )
    return pages


def test_upstream_cost_and_margin_never_reach_a_customer_page(client, session, ledger):
    costs = {c for c in session.scalars(select(EventRecord.upstream_cost)) if c}
    invoices = [session.get(InvoiceRecord, i) for i in ledger.values()]
    figures = {f"{v.normalize():f}" for v in costs} | {
        f"{value.quantize(Decimal('0.01'))}" for i in invoices for value in (i.upstream_cost, i.margin)
    }
    pages = _customer_pages(client, session, ledger)
    assert len(pages) >= 7 and all("<table" in page for page in pages)
    for page in pages:
        lowered = page.lower()
        assert "cost" not in lowered and "margin" not in lowered.replace("margin:", "").replace("margin-", "")
        for figure in figures:
            assert f">{figure}" not in page and f"{figure} USD" not in page


def test_a_hostile_customer_id_is_escaped(client):
    page = client.get(url(EVIL)).text
    assert "<script>" not in page
    assert html.escape(EVIL) in page


def _denied(client, link):
    response = client.get(link)
    assert response.status_code == 403
    return response.text


def test_tampered_expired_and_other_customers_tokens_get_the_same_403(client):
    good = url("acme")
    token = good.split("token=")[1]
    bodies = {
        _denied(client, good[:-2] + ("AA" if not good.endswith("AA") else "BB")),  # tampered
        _denied(client, url("acme", expires=NOW - timedelta(seconds=1))),  # expired
        _denied(client, good.replace("customer=acme", "customer=globex")),  # another customer's
        _denied(
            client, f"/portal?customer=acme&token={sign_portal_token(b'x' * 32, 'acme', NOW + timedelta(1))}"
        ),
        _denied(client, "/portal?customer=acme"),  # no token at all
        _denied(client, f"/portal?customer=nobody&token={token}"),
        _denied(client, url("deleted-customer")),  # valid link, unknown customer
    }
    assert len(bodies) == 1
    [body] = bodies
    assert "acme" not in body and "globex" not in body and "expired" not in body.lower()


def test_headers_forbid_caching_framing_and_scripts(client):
    response = client.get(url("acme"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_key_every_link_is_refused(sessions, ledger, secret):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from spanledger.billing.portal import portal_routes

    app = Starlette(routes=portal_routes(sessions, secret_key=secret, clock=lambda: NOW))
    with TestClient(app) as client:
        assert client.get(url("acme")).status_code == 403
        assert client.get("/admin").status_code == 403


@pytest.mark.parametrize("meter", ["tokens", "agent-tokens"])
def test_daily_usage_from_rollups_equals_the_event_scan(session, ledger, meter):
    from spanledger.billing.models import Customer
    from spanledger.billing.portal.customer_data import _daily_from_events, daily_usage

    definition = to_definition(get_meter(session, meter))
    for customer in ("acme", "globex"):
        customer_id = session.query(Customer).filter_by(external_id=customer).one().id
        # Ragged edges on both sides: part of the window comes from the events, the rest from rollups.
        start, end = NOV + timedelta(hours=9, minutes=30), NOW + timedelta(minutes=7)
        expected = sorted(
            (day, definition.aggregation.finish(values))
            for day, values in _daily_from_events(session, definition, customer_id, start, end).items()
        )
        assert daily_usage(session, definition, customer_id, start, end) == expected
        assert expected or meter == "agent-tokens"
