"""The admin's Cost Insights page: behind the admin token, figures agreeing with the margin report."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from portal_ledger import ADMIN, NOW, OCT

from spanledger.billing.cost_report import cost_report
from spanledger.billing.margin_report import margin_report, negative_margin_customers
from spanledger.billing.portal import ADMIN_COOKIE, admin_view
from spanledger.billing.portal.pages import DENIED_PAGE

BEARER = {"Authorization": f"Bearer {ADMIN}"}


def test_per_customer_margins_and_negative_customers_agree_with_the_margin_report(session, ledger):
    view = admin_view(session, start=OCT, end=NOW)
    assert view.by_customer == margin_report(session, "customer", start=OCT, end=NOW)
    assert view.negative == negative_margin_customers(session, start=OCT, end=NOW)
    assert [row.key for row in view.negative] == ["freeloader"]  # usage, and no plan to pay for it


def test_per_model_and_per_day_figures_add_up_and_costs_match_exactly(session, ledger):
    view = admin_view(session, start=OCT, end=NOW)
    revenue = sum(r.revenue for r in view.by_customer)
    assert sum(r.revenue for r in view.by_model) == revenue == sum(r.revenue for r in view.by_day)
    costs = {row.key: row.upstream_cost for row in cost_report(session, "model", start=OCT, end=NOW)}
    assert {r.key: r.upstream_cost for r in view.by_model if r.upstream_cost} == costs
    reference = {r.key: r for r in margin_report(session, "day", start=OCT, end=NOW)}
    for row in view.by_day:
        assert row.upstream_cost == reference[row.key].upstream_cost
        # Revenue is split per (model, day) group rather than per event: a cent per line at most.
        assert abs(row.revenue - reference[row.key].revenue) <= Decimal("0.05")
    assert "(base fee)" in {r.key for r in view.by_model}


def test_the_burst_day_is_a_usage_anomaly(session, ledger):
    view = admin_view(session, start=OCT, end=NOW)
    [anomaly] = view.anomalies
    assert (anomaly.customer, anomaly.day, anomaly.usage) == ("acme", "2026-11-20", Decimal(120))


def test_the_page_needs_the_admin_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN}"}):
        response = client.get("/admin", headers=headers)
        assert response.status_code == 403 and response.text == DENIED_PAGE
    page = client.get("/admin", headers=BEARER)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = html.unescape(page.text)
    assert "Margin per customer" in text and "Usage anomalies" in text and "<svg" in text
    negative = text.split('data-testid="negative"')[1].split("</table>")[0]
    assert "freeloader" in negative and "acme" not in negative


def test_the_page_shows_the_report_figures(client, session, ledger):
    rows = margin_report(session, "customer", start=OCT, end=NOW)
    session.rollback()
    text = client.get("/admin", headers=BEARER).text
    table = text.split('data-testid="margin-by-customer"')[1].split("</table>")[0]
    for row in rows:
        cells = (
            f'<td>{html.escape(row.key)}</td><td class="num">{row.revenue.quantize(Decimal("0.01"))} USD</td>'
        )
        assert cells in table


def test_login_sets_a_signed_cookie_that_opens_the_page(client):
    assert client.get("/admin/login?token=wrong", follow_redirects=False).status_code == 403
    response = client.get(f"/admin/login?token={ADMIN}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    cookie = response.cookies[ADMIN_COOKIE]
    assert "httponly" in response.headers["set-cookie"].lower()
    assert client.get("/admin").status_code == 200  # the client keeps the cookie
    expires, mac = cookie.split(".")
    for forged in (f"{int(expires) + 3600}.{mac}", f"{int(time.time()) - 1}.{mac}", "garbage"):
        client.cookies.clear()
        client.cookies.set(ADMIN_COOKIE, forged)
        assert client.get("/admin").status_code == 403


@pytest.mark.parametrize("query", ["start=2026-13-01", "end=yesterday", "currency=dollars"])
def test_bad_parameters_are_a_400_with_a_sentence(client, query):
    response = client.get(f"/admin?{query}", headers=BEARER)
    assert response.status_code == 400 and len(response.text) < 200


def test_a_window_can_be_chosen(client):
    text = client.get("/admin?start=2026-11-01&end=2026-11-21", headers=BEARER).text
    assert "2026-11-01 00:00 to 2026-11-21 00:00 UTC" in text
    assert re.search(r'data-testid="revenue">0\.00 USD', text)  # October's invoices start before the window
    assert timedelta(days=1)  # the window is whole days
