"""``spanledger meters``: define meters and read usage from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer

from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table, parse_cli_time
from spanledger.billing.cli._state import state_of
from spanledger.billing.errors import InvalidMeterError
from spanledger.billing.meters import (
    MeterDefinition,
    create_meter,
    get_meter,
    list_meters,
    meter_usage,
    to_definition,
)

app = typer.Typer(help="Define meters (filter + aggregation) and read usage from them.", no_args_is_help=True)


def _parse_filter_option(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMeterError(f"--filter is not valid JSON ({exc.msg} at column {exc.colno})") from None


def _print_meters(definitions: list[MeterDefinition], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([d.to_json() for d in definitions])
        return
    emit_table(
        title,
        ["name", "event", "aggregation", "field", "filter"],
        [
            (
                d.name,
                d.event_name,
                d.aggregation.value,
                d.field,
                json.dumps(d.to_json()["filter"]) if d.filter else "",
            )
            for d in definitions
        ],
    )


@app.command("create")
def create_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Unique meter name, e.g. input-tokens."),
    aggregation: str = typer.Option(..., "--aggregation", "-a", help="count, sum, max, min, avg or unique."),
    field: str | None = typer.Option(
        None, "--field", "-f", help="Event field, e.g. input_tokens or metadata.key."
    ),
    event_name: str | None = typer.Option(None, help="Event name to meter (default gen_ai.call)."),
    filter_json: str | None = typer.Option(
        None, "--filter", help='JSON filter, e.g. \'{"field": "provider", "op": "eq", "value": "openai"}\'.'
    ),
    description: str | None = typer.Option(None, help="Free text shown in listings."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a meter."""
    definition = MeterDefinition.parse(
        name,
        aggregation,
        field,
        event_name=event_name,
        filter=_parse_filter_option(filter_json),
        description=description,
    )
    with state_of(ctx).transaction() as session:
        create_meter(session, definition)
    _print_meters([definition], as_json, "created")


@app.command("list")
def list_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List meters."""
    with state_of(ctx).transaction() as session:
        definitions = [to_definition(m) for m in list_meters(session)]
    _print_meters(definitions, as_json, "meters")


@app.command("show")
def show_command(ctx: typer.Context, name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Show one meter."""
    with state_of(ctx).transaction() as session:
        definition = to_definition(get_meter(session, name))
    if as_json:
        emit_json(definition.to_json())
    else:
        _print_meters([definition], False, name)


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@app.command("usage")
def usage_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The meter."),
    customer: str | None = typer.Option(None, help="Only this customer (external id)."),
    start: str | None = typer.Option(
        None, "--from", help="Window start (date or ISO time); default: month start."
    ),
    end: str | None = typer.Option(None, "--to", help="Window end, exclusive; default: now."),
    group_by: str | None = typer.Option(
        None, "--group-by", help="model, provider, operation or metadata.<key>."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Usage of a meter per customer (and group) over a window [from, to)."""
    now = datetime.now(UTC)
    window_start = parse_cli_time(start, "--from") or _month_start(now)
    window_end = parse_cli_time(end, "--to") or now
    with state_of(ctx).transaction() as session:
        definition = to_definition(get_meter(session, name))
        rows = meter_usage(
            session, definition, start=window_start, end=window_end, customer=customer, group_by=group_by
        )
    if as_json:
        emit_json(
            {
                "meter": definition.name,
                "aggregation": definition.aggregation.value,
                "field": definition.field,
                "from": window_start,
                "to": window_end,
                "group_by": group_by,
                "rows": [{"customer": r.customer, "group": r.group, "value": r.value} for r in rows],
            }
        )
        return
    columns = ["customer", group_by, definition.aggregation.value] if group_by else ["customer", "value"]
    emit_table(
        f"{definition.name} from {window_start:%Y-%m-%d %H:%M} to {window_end:%Y-%m-%d %H:%M} UTC",
        columns,
        [(r.customer, r.group, r.value) if group_by else (r.customer, r.value) for r in rows],
    )
