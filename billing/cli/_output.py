"""Printing for people (rich tables) and for scripts (``--json``), and parsing shared options."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from spanledger.billing.errors import SpanledgerError

__all__ = [
    "JSON_OPTION",
    "console",
    "emit_json",
    "emit_table",
    "error_console",
    "json_default",
    "parse_cli_time",
]

console = Console()
error_console = Console(stderr=True, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")


def json_default(value: Any) -> Any:
    """JSON for spanledger values: Decimals as exact strings, datetimes as ISO 8601 UTC."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=json_default, indent=2) + "\n")


def emit_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else _cell(cell) for cell in row))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return json_default(value)
    return str(value)


def parse_cli_time(value: str | None, option: str) -> datetime | None:
    """A ``--from``/``--to`` value: a date (midnight UTC) or an ISO 8601 time (UTC if no zone given)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SpanledgerError(f"{option} {value!r} is not a date (2026-11-01) or an ISO 8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
