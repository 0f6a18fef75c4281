"""``spanledger margins``: revenue, upstream cost and gross margin, and who loses money."""

from __future__ import annotations

from decimal import Decimal

import typer

from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table, parse_cli_time
from spanledger.billing.cli._state import state_of
from spanledger.billing.margin_report import margin_report, negative_margin_customers

__all__ = ["register"]

_ZERO = Decimal(0)


def _plain(value: Decimal) -> str:
    """An exact amount without the storage's trailing zeros: 30.400000000000 → 30.4."""
    return f"{value.normalize():f}" if value != _ZERO else "0"


def margins_command(
    ctx: typer.Context,
    by: str = typer.Option("customer", "--by", help="customer, model, provider, day, week or month."),
    start: str | None = typer.Option(
        None, "--from", help="From this date (events; invoices by month start)."
    ),
    end: str | None = typer.Option(None, "--to", help="Before this date."),
    currency: str = typer.Option("USD", "--currency", help="Invoices and costs in this currency."),
    negative: bool = typer.Option(False, "--negative", help="Only the customers whose margin is negative."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revenue (from invoices) against upstream cost, grouped as asked."""
    window = {
        "start": parse_cli_time(start, "--from"),
        "end": parse_cli_time(end, "--to"),
        "currency": currency,
    }
    with state_of(ctx).transaction() as session:
        rows = (
            negative_margin_customers(session, **window) if negative else margin_report(session, by, **window)
        )
    key = "customer" if negative else by
    if as_json:
        emit_json(
            {
                "by": key,
                "currency": currency.upper(),
                "rows": [
                    {"key": r.key, "revenue": r.revenue, "upstream_cost": r.upstream_cost,
                     "gross_margin": r.gross_margin, "margin_percent": r.margin_percent,
                     "unknown_cost_events": r.unknown_cost_events}
                    for r in rows
                ],
            }
        )  # fmt: skip
        return
    emit_table(
        "customers with a negative margin" if negative else f"margin by {by}",
        [key, "revenue", "upstream cost", "gross margin", "margin %", "unknown cost events"],
        [
            (
                r.key,
                _plain(r.revenue),
                _plain(r.upstream_cost),
                _plain(r.gross_margin),
                "n/a" if r.margin_percent is None else r.margin_percent,
                r.unknown_cost_events,
            )
            for r in rows
        ],
    )


def register(app: typer.Typer) -> None:
    app.command("margins")(margins_command)
