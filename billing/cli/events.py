"""``spanledger events``: load usage from JSON Lines and audit what is stored, no tracing needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from spanledger.billing.cli._output import (
    JSON_OPTION,
    console,
    emit_json,
    emit_table,
    json_default,
    parse_cli_time,
)
from spanledger.billing.cli._state import state_of
from spanledger.billing.errors import SpanledgerError
from spanledger.billing.event_files import ImportReport, import_lines, list_events

app = typer.Typer(help="Import usage events from JSON Lines and list stored events.", no_args_is_help=True)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="A JSON Lines file of events, or - for standard input."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store the events of FILE exactly once; bad lines are reported by number, good lines kept.

    Exits with status 1 when any line was rejected (the good lines are stored all the same).
    """
    state = state_of(ctx)
    if file == "-":
        report = import_lines(state.session_factory, sys.stdin)
    else:
        path = Path(file)
        if not path.is_file():
            raise SpanledgerError(f"no such file: {file}")
        show_progress = not as_json and sys.stdout.isatty()
        with path.open(encoding="utf-8", errors="replace") as handle:
            if show_progress:
                with Progress(
                    TextColumn("importing"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=console,
                    transient=True,
                ) as progress:
                    task = progress.add_task("import", total=_count_lines(path))
                    report = import_lines(
                        state.session_factory, handle, on_progress=lambda n: progress.advance(task, n)
                    )
            else:
                report = import_lines(state.session_factory, handle)
    _print_report(report, as_json)
    if report.bad_lines:
        raise typer.Exit(1)


def _print_report(report: ImportReport, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "merged": report.merged,
                "rejected": [{"line": b.line, "reason": b.reason} for b in report.bad_lines],
            }
        )
        return
    console.print(
        f"{report.inserted} stored, {report.duplicates} already present (duplicates), "
        f"{report.merged} merged into stored events, {len(report.bad_lines)} rejected"
    )
    for bad in report.bad_lines:
        console.print(f"  line {bad.line}: {bad.reason}", style="red", highlight=False)


@app.command("list")
def list_command(
    ctx: typer.Context,
    customer: str | None = typer.Option(None, help="Only this customer (external id)."),
    start: str | None = typer.Option(None, "--from", help="Occurred at or after (date or ISO time)."),
    end: str | None = typer.Option(None, "--to", help="Occurred before (exclusive)."),
    limit: int | None = typer.Option(None, min=1, help="At most this many events."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON Lines (one event per line; `events import` reads them back)."
    ),
) -> None:
    """List stored events in ingestion order."""
    window_start, window_end = parse_cli_time(start, "--from"), parse_cli_time(end, "--to")
    with state_of(ctx).transaction() as session:
        events = list_events(session, customer=customer, start=window_start, end=window_end, limit=limit)
        if as_json:
            for record, document in events:
                extra = {"sequence": record.sequence, "received_at": record.received_at}
                line = {**document, **extra}
                if record.upstream_cost is not None:
                    line["upstream_cost"] = record.upstream_cost
                sys.stdout.write(json.dumps(line, default=json_default) + "\n")
            return
        rows = [
            (
                record.sequence,
                document["occurred_at"],
                document["customer_external_id"] or "(unattributed)",
                document["provider"],
                document["response_model"] or document["request_model"],
                record.input_tokens,
                record.output_tokens,
                document["dedupe_key"],
            )
            for record, document in events
        ]
    emit_table(
        "events", ["seq", "occurred", "customer", "provider", "model", "in", "out", "dedupe key"], rows
    )
