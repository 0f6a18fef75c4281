"""The portal's pages as HTML (pure: view data in, escaped HTML out).

Customer pages render only :mod:`.customer_data` and :mod:`.drilldown` views, which carry no
upstream cost or margin; the admin page renders :mod:`.admin_data`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from spanledger.billing.invoices.audit import money_text, number_text
from spanledger.billing.margins import MarginRow
from spanledger.billing.portal.admin_data import AdminView
from spanledger.billing.portal.customer_data import CustomerPortalView, InvoiceView, LineView
from spanledger.billing.portal.drilldown import RequestsPage
from spanledger.billing.portal.html import bar_chart, esc, page, table

__all__ = ["DENIED_PAGE", "NOT_FOUND_PAGE", "admin_page", "customer_page", "requests_page_html"]

#: One body for every refused token (tampered, expired, another customer's): it reveals nothing.
DENIED_PAGE = page("Access denied", "spanledger", "<section><p>This link is not valid.</p></section>")
NOT_FOUND_PAGE = page("Not found", "spanledger", "<section><p>There is nothing here.</p></section>")

#: ``(invoice reference, line position, page) -> escaped href`` of a drill-down page.
LinkFunction = Callable[[str, int, int], str]


def _money(value: Decimal | None, currency: str) -> str:
    return f"{money_text(value, currency)} {currency}" if value is not None else "—"


def _number(value: Decimal | None) -> str:
    return number_text(value) or "—"


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "—"


def _lines_table(
    lines: list[LineView], currency: str, total: Decimal, link: Callable[[int], str], test_id: str
) -> str:
    rows = []
    for line in lines:
        description = esc(line.description)
        if line.meter is not None:
            description = f'<a href="{link(line.position)}" data-testid="drill">{description}</a>'
        rows.append(
            (description, _number(line.quantity), _number(line.unit_amount), _money(line.amount, currency))
        )
    return table(
        ("Line", "Quantity", "Unit price", "Amount"), rows, numeric=(1, 2, 3), raw=(0,),
        total=("Total", "", "", _money(total, currency)), test_id=test_id,
    )  # fmt: skip


def _estimate(view: CustomerPortalView, link: LinkFunction) -> str:
    if view.estimate is None:
        note = esc(view.estimate_note)
        return f'<section id="estimate"><h2>Estimated charges so far</h2><p class="note">{note}</p></section>'
    estimate = view.estimate
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in estimate.notes)
    lines = _lines_table(
        estimate.lines,
        estimate.currency,
        estimate.total,
        lambda position: link("current", position, 1),
        "estimate",
    )
    total = esc(_money(estimate.total, estimate.currency))
    return (
        f'<section id="estimate"><h2>Estimated charges so far ({esc(estimate.period)})</h2>'
        f'<p>Estimated total: <strong data-testid="estimate-total">{total}</strong></p>{lines}{notes}'
        '<p class="note">An estimate of this month\'s invoice from the usage recorded so far; '
        "the final invoice is prepared after the period ends.</p></section>"
    )


def _usage(view: CustomerPortalView) -> str:
    if not view.usage:
        return ""
    rows = [(u.meter, _number(u.value)) for u in view.usage]
    models = [(u.meter, model, _number(value)) for u in view.usage for model, value in u.by_model]
    return (
        '<section id="usage"><h2>Usage this period</h2>'
        + table(("Meter", "Usage"), rows, numeric=(1,), test_id="usage")
        + "<h2 style='margin-top:14px'>By model</h2>"
        + table(("Meter", "Model", "Usage"), models, numeric=(2,), test_id="usage-by-model")
        + "</section>"
    )


def _daily(view: CustomerPortalView) -> str:
    charts = "".join(
        f"<h3 style='font-size:14px'>{esc(series.meter)}</h3>"
        + bar_chart(series.points, label=f"daily {series.meter}")
        for series in view.daily
    )
    return f'<section id="daily"><h2>Daily usage</h2>{charts or bar_chart([], label="daily usage")}</section>'


def _credits(view: CustomerPortalView) -> str:
    if not view.credits:
        return ""
    parts = []
    for account in view.credits:
        balance = "unlimited" if account.unlimited else _number(account.balance)
        rows = [(_time(r.occurred_at), r.kind, _number(r.amount), r.reason or "") for r in account.recent]
        shown = (
            f"the latest {len(account.recent)} of {account.entry_count} entries"
            if account.entry_count > len(account.recent)
            else f"{account.entry_count} entries"
        )
        parts.append(
            f"<h3 style='font-size:14px'>{esc(account.meter)}: "
            f'<span data-testid="credit-balance">{esc(balance)}</span> credits</h3>'
            + table(("When", "Entry", "Credits", "Reason"), rows, numeric=(2,), test_id="credit-ledger")
            + f'<p class="note">Ledger: {esc(shown)}.</p>'
        )
    return f'<section id="credits"><h2>Credits</h2>{"".join(parts)}</section>'


def _invoice(invoice: InvoiceView, link: LinkFunction) -> str:
    title = invoice.number or invoice.period
    paid = f" · paid {_time(invoice.paid_at)}" if invoice.paid_at else ""
    lines = _lines_table(
        invoice.lines, invoice.currency, invoice.total,
        lambda position: link(str(invoice.id), position, 1), f"invoice-{title}",
    )  # fmt: skip
    total = esc(_money(invoice.total, invoice.currency))
    return (
        f'<div class="invoice" data-testid="invoice" data-number="{esc(title)}">'
        f"<h3 style='font-size:14px'>{esc(title)} · {esc(invoice.period)} · "
        f'<span class="badge {esc(invoice.status)}" data-testid="invoice-status">{esc(invoice.status)}</span>'
        f'{esc(paid)} · <span data-testid="invoice-total">{total}</span></h3>'
        f"{lines}</div>"
    )


def customer_page(view: CustomerPortalView, link: LinkFunction) -> str:
    """The customer's portal page."""
    who = view.name or view.customer
    period = f"{view.period.start:%Y-%m-%d} to {view.period.end:%Y-%m-%d}"
    plan = f" · plan {view.plan}" if view.plan else ""
    invoices = "".join(_invoice(i, link) for i in view.invoices) or '<p class="note">No invoices yet.</p>'
    body = (
        _estimate(view, link)
        + _usage(view)
        + _daily(view)
        + _credits(view)
        + f'<section id="invoices"><h2>Invoices</h2>{invoices}</section>'
    )
    return page(f"Usage and billing — {who}", f"Billing period {period}{plan}", body)


def requests_page_html(
    result: RequestsPage, link: LinkFunction, back: str, invoice: str, position: int
) -> str:
    """One page of a line's requests."""
    selection = result.selection
    rows = [
        (
            _time(r.occurred_at), r.model or "—", _number(Decimal(r.input_tokens or 0)),
            _number(Decimal(r.output_tokens or 0)), _number(r.quantity), _money(r.charge, selection.currency),
        )
        for r in result.rows
    ]  # fmt: skip
    pager = []
    if result.page > 1:
        pager.append(
            f'<a href="{link(invoice, position, result.page - 1)}" data-testid="previous">Previous</a>'
        )
    if result.page < result.pages:
        pager.append(f'<a href="{link(invoice, position, result.page + 1)}" data-testid="next">Next</a>')
    body = (
        f'<section><p><a href="{back}" data-testid="back">Back to usage and billing</a></p>'
        f"<h2>{esc(selection.description)} — {esc(selection.invoice_label)}</h2>"
        f'<p>{esc(result.total_requests)} requests · line amount <strong data-testid="line-amount">'
        f"{esc(_money(selection.amount, selection.currency))}</strong> · page "
        f'<span data-testid="page">{esc(result.page)}</span> of {esc(result.pages)}</p>'
        + table(
            ("Time", "Model", "Input tokens", "Output tokens", "Metered", "Charge"), rows,
            numeric=(2, 3, 4, 5), test_id="requests",
        )
        + f'<p>{" · ".join(pager)}</p><p class="note">Each request\'s charge is its share of the line, in '
        "proportion to what it metered; the charges add up to the line amount.</p></section>"
    )  # fmt: skip
    return page("Requests", f"{selection.description}", body)


def _margin_table(rows: list[MarginRow], currency: str, first: str, test_id: str) -> str:
    cells = [
        (
            r.key, _money(r.revenue, currency), _money(r.upstream_cost, currency),
            _money(r.gross_margin, currency), "—" if r.margin_percent is None else f"{r.margin_percent}%",
            r.unknown_cost_events,
        )
        for r in rows
    ]  # fmt: skip
    return table(
        (first, "Revenue", "Upstream cost", "Margin", "Margin %", "Unknown-cost requests"), cells,
        numeric=(1, 2, 3, 4, 5), test_id=test_id,
    )  # fmt: skip


def admin_page(view: AdminView) -> str:
    """The admin's Cost Insights page."""
    currency = view.currency
    revenue = sum((r.revenue for r in view.by_customer), Decimal(0))
    cost = sum((r.upstream_cost for r in view.by_customer), Decimal(0))
    anomalies = table(
        ("Customer", "Day", "Requests", "p99 of earlier days", "Earlier days"),
        [(a.customer, a.day, _number(a.usage), _number(a.p99), a.history_days) for a in view.anomalies],
        numeric=(2, 3, 4), test_id="anomalies",
    )  # fmt: skip
    negative = (
        _margin_table(view.negative, currency, "Customer", "negative")
        if view.negative
        else '<p class="note">No customer has a negative margin in this window.</p>'
    )
    body = (
        f'<section><h2>Summary</h2><p>Revenue <strong data-testid="revenue">{esc(_money(revenue, currency))}'
        "</strong>"
        f' · upstream cost <strong data-testid="cost">{esc(_money(cost, currency))}</strong>'
        f' · margin <strong data-testid="margin">{esc(_money(revenue - cost, currency))}</strong>'
        f" · {esc(view.requests)} requests</p></section>"
        "<section><h2>Margin over time</h2>"
        + bar_chart([(r.key, r.gross_margin) for r in view.by_day], label="daily margin")
        + _margin_table(view.by_day, currency, "Day", "margin-by-day")
        + "</section><section><h2>Customers with a negative margin</h2>"
        + negative
        + "</section><section><h2>Margin per customer</h2>"
        + _margin_table(view.by_customer, currency, "Customer", "margin-by-customer")
        + "</section><section><h2>Margin per model</h2>"
        + _margin_table(view.by_model, currency, "Model", "margin-by-model")
        + '</section><section><h2>Usage anomalies</h2><p class="note">Days on which a customer made more '
        "requests than the p99 of their own earlier days (at least 7 earlier days).</p>"
        + anomalies
        + "</section>"
    )
    window = f"{view.start:%Y-%m-%d %H:%M} to {view.end:%Y-%m-%d %H:%M} UTC · {currency}"
    return page("Cost Insights (admin)", window, body)
