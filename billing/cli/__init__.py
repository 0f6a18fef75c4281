"""The ``spanledger`` admin CLI: presentation only; every rule lives in the billing services.

Each command group is a module of its own, registered in :data:`COMMAND_GROUPS`. Errors a user can
fix (:class:`~spanledger.billing.errors.SpanledgerError`) print as one sentence and exit 1; no
tracebacks for user mistakes.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from spanledger.billing.cli._output import error_console
from spanledger.billing.cli._state import CliState
from spanledger.billing.environment_variables import SPANLEDGER_DATABASE_URL
from spanledger.billing.errors import SpanledgerError

__all__ = ["COMMAND_GROUPS", "app", "main"]

#: (module under spanledger.billing.cli, command name). A module exposes ``app`` (a Typer group)
#: or ``register(app)`` for top-level commands.
COMMAND_GROUPS: list[tuple[str, str]] = [
    ("db", "db"),
    ("customers", "customers"),
    ("meters", "meters"),
    ("events", "events"),
    ("stripe", "stripe"),
    ("serve", "serve"),
    ("apply", "apply"),
    ("prices", "prices"),
    ("plans", "plans"),
    ("subscriptions", "subscriptions"),
    ("credits", "credits"),
    ("costs", "costs"),
    ("margins", "margins"),
    ("invoices", "invoices"),
]


class _FriendlyErrors(TyperGroup):
    """Turns spanledger errors into one line ``Error: …`` on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SpanledgerError as exc:
            error_console.print(f"Error: {exc}", style="red", highlight=False, markup=False)
            raise typer.Exit(1) from None
        finally:
            if isinstance(ctx.obj, CliState):
                ctx.obj.close()


app = typer.Typer(
    name="spanledger",
    cls=_FriendlyErrors,
    help="spanledger: usage-based billing for AI products, from OpenTelemetry traces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar=SPANLEDGER_DATABASE_URL,
        show_envvar=True,
        help="SQLAlchemy URL of the ledger (default sqlite:///spanledger.db).",
    ),
) -> None:
    ctx.obj = CliState(database_url=database_url)


for _module_name, _command in COMMAND_GROUPS:
    _module = importlib.import_module(f"spanledger.billing.cli.{_module_name}")
    if hasattr(_module, "register"):
        _module.register(app)
    else:
        app.add_typer(_module.app, name=_command)


def main() -> None:
    """Console-script entry point."""
    app()
