"""The portal's Starlette routes (presentation only), mounted by ``spanledger serve``.

- ``GET /portal?customer=<id>&token=<signed link token>`` — the customer's page.
- ``GET /portal/requests?customer=…&token=…&invoice=<id|current>&line=<n>&page=<n>`` — drill-down.
- ``GET /admin`` — Cost Insights, with ``Authorization: Bearer <SPANLEDGER_ADMIN_TOKEN>`` or the
  session cookie that ``GET /admin/login?token=<SPANLEDGER_ADMIN_TOKEN>`` sets (signed, 12 hours).

A refused token — tampered, expired, another customer's, missing — always gets the same 403 body.
Pages are ``no-store`` and carry a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from spanledger.billing.errors import ConfigurationError, NotFoundError
from spanledger.billing.portal.admin_data import admin_view
from spanledger.billing.portal.customer_data import customer_portal_view
from spanledger.billing.portal.drilldown import line_selection, requests_page
from spanledger.billing.portal.html import href
from spanledger.billing.portal.pages import (
    DENIED_PAGE,
    NOT_FOUND_PAGE,
    admin_page,
    customer_page,
    requests_page_html,
)
from spanledger.billing.portal.tokens import PortalAccessDenied, require_secret_key, verify_portal_token

__all__ = ["ADMIN_COOKIE", "PORTAL_PATH", "portal_routes"]

PORTAL_PATH = "/portal"
ADMIN_PATH = "/admin"
ADMIN_COOKIE = "spanledger_admin"
ADMIN_SESSION_SECONDS = 12 * 3600
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}

Clock = Callable[[], datetime]


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _denied() -> HTMLResponse:
    return _html(DENIED_PAGE, 403)


def _admin_cookie_value(admin_token: str, expires: int) -> str:
    mac = hmac.new(admin_token.encode(), f"spanledger-admin:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def _admin_allowed(request: Request, admin_token: str) -> bool:
    authorization = request.headers.get("authorization", "")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), admin_token.encode()):
        return True
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    expires, _, _mac = cookie.partition(".")
    if not expires.isdigit() or int(expires) <= time.time():
        return False
    return hmac.compare_digest(cookie.encode(), _admin_cookie_value(admin_token, int(expires)).encode())


def _day(text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not a day like 2026-11-01") from None


def _positive(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and int(text) > 0 else default


class _Portal:
    def __init__(
        self, sessions: sessionmaker[Session], key: bytes | None, admin_token: str | None, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._key = key
        self._admin_token = admin_token
        self._clock = clock

    def _grant(self, request: Request) -> str:
        customer = request.query_params.get("customer", "")
        if self._key is None:
            raise PortalAccessDenied()
        verify_portal_token(self._key, request.query_params.get("token"), customer, self._clock())
        return customer

    def _link(self, request: Request, customer: str) -> Callable[[str, int, int], str]:
        token = request.query_params.get("token")

        def link(invoice: str, line: int, page: int) -> str:
            return href(
                f"{PORTAL_PATH}/requests",
                customer=customer,
                token=token,
                invoice=invoice,
                line=line,
                page=page,
            )

        return link

    def customer(self, request: Request) -> Response:
        try:
            customer = self._grant(request)
            with self._sessions() as session:
                view = customer_portal_view(session, customer, self._clock())
        except (PortalAccessDenied, NotFoundError):
            # A valid link for a customer deleted since looks like any refused link.
            return _denied()
        return _html(customer_page(view, self._link(request, customer)))

    def requests(self, request: Request) -> Response:
        try:
            customer = self._grant(request)
        except PortalAccessDenied:
            return _denied()
        params = request.query_params
        invoice, position = params.get("invoice", ""), _positive(params.get("line"), 0)
        try:
            with self._sessions() as session:
                selection = line_selection(session, customer, invoice, position, self._clock())
                result = requests_page(session, selection, _positive(params.get("page"), 1))
        except NotFoundError:
            return _html(NOT_FOUND_PAGE, 404)
        back = href(PORTAL_PATH, customer=customer, token=params.get("token"))
        return _html(requests_page_html(result, self._link(request, customer), back, invoice, position))

    def admin(self, request: Request) -> Response:
        if self._admin_token is None or not _admin_allowed(request, self._admin_token):
            return _denied()
        now = self._clock()
        first_of_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        previous_month = (first_of_month - timedelta(days=1)).replace(day=1)
        try:
            start = _day(request.query_params.get("start"), previous_month)
            end = _day(request.query_params.get("end"), now)
            currency = request.query_params.get("currency", "USD")
            with self._sessions() as session:
                view = admin_view(session, start=start, end=end, currency=currency)
        except ConfigurationError as exc:
            return HTMLResponse(str(exc), status_code=400, headers=_HEADERS)
        return _html(admin_page(view))

    def admin_login(self, request: Request) -> Response:
        given = request.query_params.get("token", "")
        if self._admin_token is None or not hmac.compare_digest(given.encode(), self._admin_token.encode()):
            return _denied()
        expires = int(time.time()) + ADMIN_SESSION_SECONDS
        response = RedirectResponse(ADMIN_PATH, status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            ADMIN_COOKIE, _admin_cookie_value(self._admin_token, expires), max_age=ADMIN_SESSION_SECONDS,
            path=ADMIN_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https",
        )  # fmt: skip
        return response


def portal_routes(
    sessions: sessionmaker[Session],
    *,
    secret_key: str | None,
    admin_token: str | None = None,
    clock: Clock | None = None,
) -> list[Any]:
    """The portal's routes. Without ``secret_key`` every customer link is refused; without
    ``admin_token`` the admin view is off (403)."""
    key = require_secret_key(secret_key) if secret_key else None
    admin = admin_token.strip() if admin_token and admin_token.strip() else None
    portal = _Portal(sessions, key, admin, clock or (lambda: datetime.now(UTC)))
    return [
        Route(PORTAL_PATH, portal.customer, methods=["GET"]),
        Route(f"{PORTAL_PATH}/requests", portal.requests, methods=["GET"]),
        Route(ADMIN_PATH, portal.admin, methods=["GET"]),
        Route(f"{ADMIN_PATH}/login", portal.admin_login, methods=["GET"]),
    ]
