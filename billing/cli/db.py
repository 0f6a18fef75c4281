"""``spanledger db``: create and migrate the ledger schema."""

from __future__ import annotations

import typer

from spanledger.billing.cli._output import JSON_OPTION, console, emit_json
from spanledger.billing.cli._state import state_of
from spanledger.billing.migrate import current_revision, head_revision, upgrade

app = typer.Typer(help="Create and migrate the ledger's database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Create or migrate the schema to the newest revision (safe to run again)."""
    state = state_of(ctx)
    before = current_revision(state.engine)
    after = upgrade(state.engine)
    if as_json:
        emit_json({"from": before, "to": after})
    elif before == after:
        console.print(f"database already at revision {after}")
    else:
        console.print(f"database upgraded from {before or 'empty'} to revision {after}")


@app.command("current")
def current_command(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the schema revision of the database and the newest one available."""
    current = current_revision(state_of(ctx).engine)
    head = head_revision()
    if as_json:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        console.print(f"current: {current or 'empty'}   newest: {head}")
