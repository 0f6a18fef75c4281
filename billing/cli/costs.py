"""``spanledger costs``: upstream cost per customer, model or provider; ``--reprice`` unknown costs."""

from __future__ import annotations

from decimal import Decimal

import typer

from spanledger.billing.cli._output import JSON_OPTION, console, emit_json, emit_table, parse_cli_time
from spanledger.billing.cli._state import state_of
from spanledger.billing.cost_report import cost_report, reprice_unknown_costs

__all__ = ["register"]

_ZERO = Decimal(0)


def _plain(value: Decimal) -> str:
    """An exact amount without the storage's trailing zeros: 30.400000000000 → 30.4."""
    return f"{value.normalize():f}" if value != _ZERO else "0"


def costs_command(
    ctx: typer.Context,
    by: str = typer.Option("customer", "--by", help="customer, model or provider."),
    start: str | None = typer.Option(None, "--from", help="Events from this date or time (UTC)."),
    end: str | None = typer.Option(None, "--to", help="Events before this date or time (UTC)."),
    reprice: bool = typer.Option(
        False,
        "--reprice",
        help="First price again the events whose cost is unknown (after adding an override).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """What the providers charged for the usage (genai-prices, or your price overrides)."""
    state = state_of(ctx)
    repriced = None
    if reprice:
        with state.transaction() as session:
            repriced = reprice_unknown_costs(session)
    with state.transaction() as session:
        rows = cost_report(
            session, by, start=parse_cli_time(start, "--from"), end=parse_cli_time(end, "--to")
        )
    if as_json:
        data = {
            "by": by,
            "rows": [
                {"key": r.key, "events": r.events, "upstream_cost": r.upstream_cost,
                 "unknown_cost_events": r.unknown_cost_events}
                for r in rows
            ],
        }  # fmt: skip
        if repriced is not None:
            data["repriced"] = {"examined": repriced.examined, "priced": repriced.priced}
        emit_json(data)
        return
    if repriced is not None:
        console.print(
            f"Re-priced {repriced.examined} event(s) with unknown cost: {repriced.priced} now priced, "
            f"{repriced.still_unknown} still unknown.",
            highlight=False,
        )
    emit_table(
        f"upstream cost by {by}",
        [by, "events", "upstream cost", "unknown cost events"],
        [(r.key, r.events, _plain(r.upstream_cost), r.unknown_cost_events) for r in rows],
    )


def register(app: typer.Typer) -> None:
    app.command("costs")(costs_command)
