"""``spanledger serve``: run the OTLP receivers (gRPC 4317, HTTP 4318) in front of the ledger.

Presentation only: options become :class:`~spanledger.exporter.server.ReceiverSettings` overrides, the
rest comes from ``SPANLEDGER_*`` variables. The exporter is imported when the command runs, so the other
commands never pay for grpc and uvicorn.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import typer

from spanledger.billing.cli._state import state_of

__all__ = ["register"]


def serve(
    ctx: typer.Context,
    grpc_endpoint: str | None = typer.Option(
        None, "--grpc", help="host:port for OTLP/gRPC (default 0.0.0.0:4317; 'off' disables)."
    ),
    http_endpoint: str | None = typer.Option(
        None, "--http", help="host:port for OTLP/HTTP (default 0.0.0.0:4318; 'off' disables)."
    ),
    migrate: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Bring the schema up to date at start."
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Receiver processes sharing the ports, one per core to use (default 1; SPANLEDGER_WORKERS).",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level."),
) -> None:
    """Receive OTLP traces and record every billable span as a usage event, exactly once."""
    from spanledger.exporter.server import ReceiverSettings, parse_endpoint
    from spanledger.exporter.server import serve as run_receiver

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides: dict[str, object] = {
        "database_url": state_of(ctx).database_url,
        "migrate": migrate,
        "workers": workers,
    }
    if grpc_endpoint is not None:
        overrides["grpc_endpoint"] = parse_endpoint(grpc_endpoint, "")
    if http_endpoint is not None:
        overrides["http_endpoint"] = parse_endpoint(http_endpoint, "")
    settings = ReceiverSettings.from_environment(**overrides)
    # An endpoint turned off on the command line must stay off (from_environment skips None overrides).
    if grpc_endpoint is not None and overrides["grpc_endpoint"] is None:
        settings = settings.replace(grpc_endpoint=None)
    if http_endpoint is not None and overrides["http_endpoint"] is None:
        settings = settings.replace(http_endpoint=None)
    # Each worker builds its own routes (and so its own database engine) after it starts.
    status = run_receiver(settings, extra_routes=lambda: _extra_routes(ctx))
    if status:
        raise typer.Exit(status)


def _extra_routes(ctx: typer.Context) -> list[Any]:
    """Everything ``serve`` mounts beside ``/v1/traces``: the Stripe webhook and the portal."""
    return [*_stripe_webhook_routes(ctx), *_portal_routes(ctx)]


def _portal_routes(ctx: typer.Context) -> list[Any]:
    """``/portal`` (links signed with ``SPANLEDGER_SECRET_KEY``) and ``/admin`` (``SPANLEDGER_ADMIN_TOKEN``).

    Without a secret key the customer pages refuse every link, and without an admin token the admin
    view is off; a secret key that is set but too short stops ``serve`` with a clear error.
    """
    from spanledger.billing.portal import SPANLEDGER_ADMIN_TOKEN, SPANLEDGER_SECRET_KEY, portal_routes

    return portal_routes(
        state_of(ctx).session_factory,
        secret_key=os.environ.get(SPANLEDGER_SECRET_KEY),
        admin_token=os.environ.get(SPANLEDGER_ADMIN_TOKEN),
    )


def _stripe_webhook_routes(ctx: typer.Context) -> list[Any]:
    """``POST /stripe/webhook`` when ``SPANLEDGER_STRIPE_WEBHOOK_SECRET`` is set, else nothing."""
    from spanledger.billing.stripe import StripeSettings, webhook_routes

    stripe_settings = StripeSettings.from_env()
    if not stripe_settings.webhook_secret:
        return []
    return list(webhook_routes(state_of(ctx).session_factory, stripe_settings.webhook_secret))


def register(app: typer.Typer) -> None:
    """Add ``serve`` as a top-level command of ``app``."""
    app.command("serve")(serve)
