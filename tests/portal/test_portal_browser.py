"""The portal in a real headless browser: Debian's Chromium driven by Playwright.

These run by default when ``chromium`` is installed, and are skipped without it — except under
``CI=true``, where a missing browser is a failure (``.ci/run`` installs it). Set
``SPANLEDGER_UPDATE_SCREENSHOT=1`` to rewrite ``docs/portal.png`` (the README's screenshot).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from portal_ledger import NOV, NOW, build_ledger, money
from starlette.applications import Starlette

from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.invoices import invoice_lines
from spanledger.billing.meters import get_meter, meter_usage, to_definition
from spanledger.billing.models import Base, Customer, InvoiceRecord
from spanledger.billing.portal import estimate, portal_routes, portal_url, require_secret_key
from spanledger.billing.portal.customer_data import current_period

pytestmark = pytest.mark.browser

SECRET = "browser-test-secret-key-0123456789"
ADMIN = "browser-admin-token-0123456789"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SCREENSHOT = Path(__file__).parents[2] / "docs" / "portal.png"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the browser tests", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, object, dict[str, int]]]:
    """The test ledger (SQLite) behind the portal routes on a loopback uvicorn server."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'ledger.db'}"
    engine = create_engine_from_url(url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        invoices = build_ledger(session)
    app = Starlette(routes=portal_routes(sessions, secret_key=SECRET, admin_token=ADMIN, clock=lambda: NOW))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the portal server did not start"
    yield f"http://127.0.0.1:{port}", sessions, invoices
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1180, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def _link(base: str, customer: str = "acme", **kwargs) -> str:
    expires = kwargs.get("expires", NOW + timedelta(days=7))
    return portal_url(base, require_secret_key(SECRET), customer, expires)


def _expected(sessions, invoices):
    with sessions() as session:
        customer = session.query(Customer).filter_by(external_id="acme").one()
        period, subscription = current_period(session, customer.id, NOW)
        preview = estimate(session, customer, subscription, period)
        definition = to_definition(get_meter(session, "tokens"))
        [usage] = meter_usage(session, definition, start=NOV, end=period.end, customer="acme")
        invoice = session.get(InvoiceRecord, invoices["acme"])
        lines = [(line.description, line.amount) for line in invoice_lines(session, invoice)]
        return preview, usage.value, invoice.number, invoice.total, lines


def test_the_page_shows_the_ledgers_numbers_and_a_screenshot_is_taken(served, page, tmp_path):
    base, sessions, invoices = served
    preview, tokens, number, total, lines = _expected(sessions, invoices)
    response = page.goto(_link(base))
    assert response.status == 200
    assert page.get_by_test_id("estimate-total").inner_text() == money(preview.total)
    rows = page.locator('[data-testid="usage"] tbody tr').all()
    shown = dict(tuple(row.locator("td").all_inner_texts()) for row in rows)
    assert shown["tokens"] == f"{tokens.normalize():f}"
    invoice = page.locator(f'[data-testid="invoice"][data-number="{number}"]')
    assert invoice.get_by_test_id("invoice-status").inner_text() == "paid"
    assert invoice.get_by_test_id("invoice-total").inner_text() == money(total)
    for description, amount in lines:
        row = invoice.locator("tr", has_text=description).first
        assert row.locator("td").last.inner_text() == money(amount)
    assert page.locator("#daily svg rect").count() > 0
    assert "cost" not in page.content().lower()
    shot = tmp_path / "portal.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("SPANLEDGER_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT), full_page=False)


def test_following_the_drill_down_adds_up_to_the_line(served, page):
    base, _sessions, _invoices = served
    page.goto(_link(base))
    page.locator("#estimate").get_by_test_id("drill").first.click()
    page.wait_for_url("**/portal/requests?**")
    amount = Decimal(page.get_by_test_id("line-amount").inner_text().split()[0])
    charges = []
    while True:
        cells = page.locator('[data-testid="requests"] tbody tr td:last-child').all_inner_texts()
        charges += [Decimal(text.split()[0]) for text in cells]
        following = page.get_by_test_id("next")
        if following.count() == 0:
            break
        following.click()
        page.wait_for_load_state()
    assert page.get_by_test_id("page").inner_text() == "3"
    assert len(charges) == 139 and sum(charges) == amount
    page.get_by_test_id("back").click()
    page.wait_for_url("**/portal?**")
    assert page.get_by_test_id("estimate-total").is_visible()


def test_refused_links_show_the_same_403_page(served, page):
    base, _sessions, _invoices = served
    good = _link(base)
    bodies = set()
    for url in (
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        _link(base, expires=NOW - timedelta(minutes=1)),
        good.replace("customer=acme", "customer=globex"),
    ):
        response = page.goto(url)
        assert response.status == 403
        bodies.add(page.content())
        assert page.locator("h1").inner_text() == "Access denied"
    assert len(bodies) == 1


def test_the_admin_view_opens_with_the_admin_token(served, browser):
    base, _sessions, _invoices = served
    context = browser.new_context()
    try:
        page = context.new_page()
        assert page.goto(f"{base}/admin").status == 403
        page.goto(f"{base}/admin/login?token={ADMIN}")
        assert page.url == f"{base}/admin"
        assert page.locator('[data-testid="negative"]').inner_text().count("freeloader") == 1
        assert page.locator("svg").count() >= 1
    finally:
        context.close()


def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser tests"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _chromium()
