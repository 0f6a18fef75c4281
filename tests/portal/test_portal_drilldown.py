"""The per-request drill-down: the audit trail's events, paginated, charges adding up to the line."""

from __future__ import annotations

import html
import itertools
import re
from datetime import timedelta
from decimal import Decimal

from portal_ledger import NOV, NOW, SECRET, money

from spanledger.billing.invoices import explain, invoice_lines
from spanledger.billing.models import InvoiceRecord
from spanledger.billing.portal import (
    PAGE_SIZE,
    line_selection,
    portal_url,
    requests_page,
    require_secret_key,
)

KEY = require_secret_key(SECRET)


def requests_url(customer: str, invoice, line: int, page: int = 1) -> str:
    link = portal_url("", KEY, customer, NOW + timedelta(days=1)).replace("/portal?", "/portal/requests?")
    return f"{link}&invoice={invoice}&line={line}&page={page}"


def _charges(page: str) -> list[Decimal]:
    table = page.split('data-testid="requests"')[1].split("</table>")[0]
    return [Decimal(v) for v in re.findall(r'<td class="num">([0-9.]+) USD</td>', table)]


def _usage_line(session, invoice_id):
    invoice = session.get(InvoiceRecord, invoice_id)
    lines = invoice_lines(session, invoice)
    [line] = [line for line in lines if line.kind == "usage" and line.amount > 0]
    return invoice, lines, line


def test_the_drill_down_lists_exactly_the_events_explain_replays(session, ledger):
    invoice, lines, line = _usage_line(session, ledger["acme"])
    explained = explain(session, invoice, lines, line.position)
    selection = line_selection(session, "acme", str(invoice.id), line.position, NOW)
    result = requests_page(session, selection, 1, page_size=1000)
    assert [row.sequence for row in result.rows] == [event["sequence"] for event in explained.events]
    assert sum(row.charge for row in result.rows) == line.amount
    # Charges follow the metered tokens: the bigger call is never charged less.
    rows = sorted(result.rows, key=lambda r: r.quantity)
    assert all(a.charge <= b.charge for a, b in itertools.pairwise(rows))
    assert all(row.charge == row.charge.quantize(Decimal("0.01")) for row in result.rows)


def test_pages_of_the_live_estimate_add_up_to_its_line(client, session):
    first = client.get(requests_url("acme", "current", 2))
    assert first.status_code == 200
    total = Decimal(html.unescape(re.search(r'data-testid="line-amount">([0-9.]+) USD<', first.text)[1]))
    count = int(re.search(r"(\d+) requests", first.text)[1])
    assert count == 19 + 120 and "of 3</p>" in first.text
    charges, page, text = [], 1, first.text
    while True:
        charges += _charges(text)
        assert f'data-testid="page">{page}<' in text
        if 'data-testid="next"' not in text:
            break
        next_href = html.unescape(re.search(r'href="([^"]+)" data-testid="next"', text)[1])
        page += 1
        text = client.get(next_href).text
    assert page == 3 and len(charges) == count
    assert (
        sum(charges) == total
        and money(total) in client.get(portal_url("", KEY, "acme", NOW + timedelta(1))).text
    )
    assert len(_charges(first.text)) == PAGE_SIZE


def test_out_of_range_pages_clamp_and_the_back_link_keeps_the_token(client):
    text = client.get(requests_url("acme", "current", 2, page=99)).text
    assert 'data-testid="page">3<' in text
    back = html.unescape(re.search(r'href="([^"]+)" data-testid="back"', text)[1])
    assert client.get(back).status_code == 200


def test_another_customers_invoice_or_a_missing_line_is_not_found(client, ledger):
    assert client.get(requests_url("acme", ledger["globex"], 3)).status_code == 404
    assert client.get(requests_url("acme", ledger["acme"], 1)).status_code == 404  # base fee: no events
    assert client.get(requests_url("acme", ledger["acme"], 99)).status_code == 404
    assert client.get(requests_url("acme", "current", 99)).status_code == 404
    assert client.get(requests_url("acme", "bogus", 1)).status_code == 404
    # A refused token still gets the one 403, before anything is looked up.
    assert (
        client.get(
            requests_url("acme", ledger["acme"], 2).replace("customer=acme", "customer=globex")
        ).status_code
        == 403
    )


def test_equal_shares_are_allocates_parts_for_equal_weights():
    from spanledger.billing.margins import allocate
    from spanledger.billing.portal.drilldown import equal_shares

    for amount, count in (
        (Decimal("10.00"), 3),
        (Decimal("0.05"), 7),
        (Decimal("123.45"), 1000),
        (Decimal(0), 4),
    ):
        expected = allocate(amount, [Decimal(1)] * count, "USD")
        assert equal_shares(amount, count, "USD", 0, count) == expected
        assert equal_shares(amount, count, "USD", 2, 3) == expected[2:3]
    assert equal_shares(Decimal(1000), 3, "JPY", 0, 3) == allocate(Decimal(1000), [Decimal(1)] * 3, "JPY")
    assert equal_shares(Decimal("5.00"), 0, "USD", 0, 0) == []


def test_a_count_meter_line_pages_through_equal_shares(session, ledger):
    from spanledger.billing.margins import allocate
    from spanledger.billing.meters import MeterDefinition
    from spanledger.billing.models import Customer
    from spanledger.billing.portal.drilldown import LineSelection

    acme = session.query(Customer).filter_by(external_id="acme").one()
    definition = MeterDefinition.parse("requests", "count", None, event_name="gen_ai.call")
    selection = LineSelection("test", "requests usage", "USD", Decimal("1.00"), acme.id, definition,
                              NOV, NOW, None, None)  # fmt: skip
    pages = [requests_page(session, selection, page, page_size=40) for page in (1, 2, 3, 4)]
    rows = [row for page in pages for row in page.rows]
    assert pages[0].total_requests == len(rows) == 139 and pages[0].pages == 4
    assert [r.charge for r in rows] == allocate(Decimal("1.00"), [Decimal(1)] * 139, "USD")
    assert [r.sequence for r in rows] == sorted(r.sequence for r in rows)
