"""``spanledger credits``: grant, top up (buy a pack), and read balances and the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import typer
from sqlalchemy import select

from spanledger.billing.catalog import pack_from_json
from spanledger.billing.cli._output import JSON_OPTION, emit_json, emit_table, parse_cli_time
from spanledger.billing.cli._state import state_of
from spanledger.billing.credits import CreditPack
from spanledger.billing.credits.service import balance, grant_once, ledger_entries, purchase_pack
from spanledger.billing.customers import get_customer
from spanledger.billing.errors import ConfigurationError, FinalizedPeriodError, NotFoundError
from spanledger.billing.meters import get_meter
from spanledger.billing.models import CreditEntryRecord, CreditMeter, CreditPackRecord, Meter
from spanledger.billing.subscriptions.closed import format_moment

app = typer.Typer(help="Credits: grant, top up with a pack, balance, ledger.", no_args_is_help=True)

_AT_HELP = (
    "When it takes effect: a date (2026-12-01, midnight UTC) or an ISO 8601 time; default: now. "
    "Refused inside a finalized invoice's billing."
)


def _at(value: str | None) -> datetime:
    return parse_cli_time(value, "--at") or datetime.now(UTC)


@contextmanager
def _dated_outside_closed_periods() -> Iterator[None]:
    """Name the option that moves a refused grant or purchase out of the finalized period."""
    try:
        yield
    except FinalizedPeriodError as exc:
        earliest = format_moment(exc.earliest)
        raise FinalizedPeriodError(
            f"{exc}; pass --at {earliest} (or later) to let it take effect then",
            invoice=exc.invoice, earliest=exc.earliest,
        ) from None  # fmt: skip


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ConfigurationError(f"{text!r} is not a number of credits") from None
    if not value.is_finite():
        raise ConfigurationError(f"{text!r} is not a number of credits")
    return value


def _entry_dict(record: CreditEntryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "amount": record.amount,
        "credits": record.credits,
        "occurred_at": record.occurred_at,
        "source": record.source,
        "expires_at": record.expires_at,
        "unlimited": record.unlimited,
        "reason": record.reason,
        "event_sequence": record.event_sequence,
        "pack": record.pack_code,
    }


def _print_entries(records: list[CreditEntryRecord], as_json: bool, title: str) -> None:
    if as_json:
        emit_json([_entry_dict(r) for r in records])
        return
    emit_table(
        title,
        ["id", "kind", "amount", "occurred", "source", "expires", "reason"],
        [(r.id, r.kind, r.amount, r.occurred_at, r.source, r.expires_at, r.reason) for r in records],
    )


@app.command("grant")
def grant_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    meter: str = typer.Argument(..., help="The credited meter, e.g. agent-tokens."),
    amount: str = typer.Argument(..., help="Credits to grant, e.g. 500."),
    reason: str = typer.Option("one-time grant", "--reason", help="Why (kept on the ledger entry)."),
    expires: str | None = typer.Option(None, "--expires", help="When the credits expire (date or ISO time)."),
    key: str | None = typer.Option(None, "--key", help="Idempotency key: repeating the grant adds nothing."),
    at: str | None = typer.Option(None, "--at", help=_AT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Grant credits once (an adjustment with a reason), usable from --at."""
    with state_of(ctx).transaction() as session, _dated_outside_closed_periods():
        record = grant_once(
            session, customer, meter, _amount(amount), at=_at(at), reason=reason,
            expires_at=parse_cli_time(expires, "--expires"), key=key,
        )  # fmt: skip
        result = balance(session, customer, meter)
        entry = None if record is None else _entry_dict(record)
    if as_json:
        emit_json({"entry": entry, "balance": result.balance, "unlimited": result.unlimited})
        return
    message = "already granted (same --key): nothing added" if entry is None else f"granted {amount}"
    emit_table(message, ["customer", "meter", "balance"], [(customer, meter, result.balance)])


def _pack(session: Any, code: str) -> CreditPack:
    record = session.scalar(select(CreditPackRecord).where(CreditPackRecord.code == code))
    if record is None:
        raise NotFoundError(f"no credit pack {code!r}; declare it under credit_packs and `spanledger apply`")
    return pack_from_json(record.definition, f"credit pack {code}")


@app.command("topup")
def topup_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    pack: str = typer.Argument(..., help="The credit pack code, e.g. starter."),
    at: str | None = typer.Option(None, "--at", help=_AT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record the purchase of a credit pack at --at (billed on the invoice of the month it falls in;
    survives period resets)."""
    with state_of(ctx).transaction() as session, _dated_outside_closed_periods():
        definition = _pack(session, pack)
        record = purchase_pack(session, customer, definition, at=_at(at))
        entry = _entry_dict(record)
        result = balance(session, customer, definition.meter)
    if as_json:
        emit_json({"entry": entry, "balance": result.balance, "unlimited": result.unlimited})
        return
    credits = "unlimited" if definition.credits is None else str(definition.credits)
    emit_table(
        f"{definition.name}: {credits} credits for {definition.price} {definition.currency}",
        ["customer", "meter", "balance", "unlimited"],
        [(customer, definition.meter, result.balance, result.unlimited)],
    )


@app.command("balance")
def balance_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    meter: str | None = typer.Option(None, "--meter", help="One credited meter (default: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The customer's credit balance per credited meter (exact as soon as the events commit)."""
    with state_of(ctx).transaction() as session:
        get_customer(session, customer)
        credited = select(Meter.name).join(CreditMeter, CreditMeter.meter_id == Meter.id).order_by(Meter.name)
        meters = [meter] if meter else list(session.scalars(credited))
        balances = [balance(session, customer, name) for name in meters]
    if as_json:
        emit_json([{"customer": b.customer, "meter": b.meter, "balance": b.balance, "unlimited": b.unlimited}
                   for b in balances])  # fmt: skip
        return
    emit_table(
        f"credits of {customer}",
        ["meter", "balance", "unlimited"],
        [(b.meter, b.balance, b.unlimited) for b in balances],
    )


@app.command("ledger")
def ledger_command(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="The customer's external id."),
    meter: str = typer.Argument(..., help="The credited meter."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every ledger entry of the customer's credits on METER, in order."""
    with state_of(ctx).transaction() as session:
        records = ledger_entries(session, get_customer(session, customer).id, get_meter(session, meter).id)
    _print_entries(records, as_json, f"credits ledger of {customer} on {meter}")
