"""``spanledger apply catalog.yaml``: catalog as code (meters, prices, plans, credit packs, overrides)."""

from __future__ import annotations

from pathlib import Path

import typer

from spanledger.billing.catalog import Action, apply_catalog, load_catalog_file
from spanledger.billing.cli._output import JSON_OPTION, console, emit_json, emit_table
from spanledger.billing.cli._state import state_of

__all__ = ["register"]


def apply_command(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="The catalog file (YAML or JSON), e.g. examples/catalog.yaml."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would change and write nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create or update meters, prices, plans, credit packs and price overrides from a catalog file."""
    catalog = load_catalog_file(path)
    with state_of(ctx).transaction() as session:
        diff = apply_catalog(session, catalog, dry_run=dry_run)
        if dry_run:
            session.rollback()
    if as_json:
        emit_json(diff.to_json())
        return
    shown = [c for c in diff.changes if c.action is not Action.UNCHANGED] or diff.changes
    emit_table(
        "dry run" if dry_run else "applied",
        ["kind", "name", "action", "detail"],
        [(c.kind, c.name, c.action.value, c.detail) for c in shown],
    )
    console.print(diff.summary(), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("apply")(apply_command)
