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

#: (module under spanledger.billing.cli, command name), loaded on first use. A module exposes
#: ``app`` (a Typer group) or ``register(app)`` adding one top-level command.
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
    ("portal", "portal-link"),
]


class _SpanledgerGroup(TyperGroup):
    """The root group: loads each command module on first use, and prints spanledger errors as one
    line ``Error: …`` on stderr with exit status 1.

    Loading lazily keeps ``spanledger events import`` from importing Stripe, gRPC or genai-prices.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *(name for _, name in COMMAND_GROUPS)})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            module_name = dict((name, module) for module, name in COMMAND_GROUPS).get(cmd_name)
            if module_name is not None:
                command = _load_command(module_name, cmd_name)
                self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SpanledgerError as exc:
            error_console.print(f"Error: {exc}", style="red", highlight=False, markup=False)
            raise typer.Exit(1) from None
        finally:
            if isinstance(ctx.obj, CliState):
                ctx.obj.close()


def _load_command(module_name: str, command_name: str) -> Any:
    module = importlib.import_module(f"spanledger.billing.cli.{module_name}")
    if hasattr(module, "register"):
        holder = typer.Typer()
        module.register(holder)
        command = typer.main.get_command(holder)
    else:
        command = typer.main.get_command(module.app)
    command.name = command_name
    return command


app = typer.Typer(
    name="spanledger",
    cls=_SpanledgerGroup,
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


def main() -> None:
    """Console-script entry point."""
    app()
