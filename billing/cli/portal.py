"""``spanledger portal-link``: print a customer's signed, expiring portal URL.

Presentation only: the token comes from :mod:`spanledger.billing.portal.tokens`, signed with
``SPANLEDGER_SECRET_KEY`` (the same key ``spanledger serve`` verifies with).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import typer

from spanledger.billing.cli._state import state_of
from spanledger.billing.customers import get_customer
from spanledger.billing.portal.environment_variables import SPANLEDGER_PORTAL_BASE_URL, SPANLEDGER_SECRET_KEY
from spanledger.billing.portal.links import portal_url
from spanledger.billing.portal.tokens import parse_duration, require_secret_key

__all__ = ["register"]

DEFAULT_BASE_URL = "http://127.0.0.1:4318"


def portal_link(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    expires: str = typer.Option("7d", "--expires", help="How long the link works: 30m, 12h, 7d, 2w."),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        envvar=SPANLEDGER_PORTAL_BASE_URL,
        show_envvar=True,
        help=f"Where `spanledger serve` is reachable (default {DEFAULT_BASE_URL}).",
    ),
) -> None:
    """Print a signed URL to CUSTOMER's usage and billing page (HMAC-SHA256, SPANLEDGER_SECRET_KEY)."""
    key = require_secret_key(os.environ.get(SPANLEDGER_SECRET_KEY))
    lifetime = parse_duration(expires)
    with state_of(ctx).transaction() as session:
        external_id = get_customer(session, customer).external_id
    expires_at = datetime.now(UTC).replace(microsecond=0) + lifetime
    typer.echo(portal_url(base_url or DEFAULT_BASE_URL, key, external_id, expires_at))
    typer.echo(f"Expires {expires_at.isoformat()}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``portal-link`` as a top-level command of ``app``."""
    app.command("portal-link")(portal_link)
