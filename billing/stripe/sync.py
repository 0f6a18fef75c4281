"""``spanledger stripe sync``: both modes in one run, with a report of what was (or would be) sent."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.stripe.client import make_client
from spanledger.billing.stripe.invoice_sync import InvoiceSyncResult, invoices_to_sync, sync_invoice
from spanledger.billing.stripe.meter_sync import DEFAULT_BATCH_EVENTS, MeterSyncResult, sync_meter_usage
from spanledger.billing.stripe.settings import StripeSettings

__all__ = ["SyncReport", "run_sync"]


@dataclass
class SyncReport:
    dry_run: bool
    invoices: list[InvoiceSyncResult] = field(default_factory=list)
    meters: list[MeterSyncResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when any invoice or meter could not be synced (payment declines are not failures)."""
        return any(r.outcome == "failed" for r in self.invoices) or any(
            m.outcome == "failed" for m in self.meters
        )


def run_sync(
    sessions: sessionmaker[Session],
    settings: StripeSettings,
    *,
    dry_run: bool = False,
    client: object | None = None,
    batch_events: int = DEFAULT_BATCH_EVENTS,
) -> SyncReport:
    """Sync every pending finalized invoice (mode ``invoices``) and push usage (mode ``meters``).

    A dry run reads the ledger and reports what would be sent; it needs no API key and sends nothing.
    """
    stripe_client = None if dry_run else (client or make_client(settings))
    report = SyncReport(dry_run=dry_run)
    with sessions() as session:
        pending = invoices_to_sync(session, settings)
    for invoice_id in pending:
        report.invoices.append(sync_invoice(sessions, stripe_client, settings, invoice_id, dry_run=dry_run))  # type: ignore[arg-type]
    report.meters = sync_meter_usage(
        sessions,
        stripe_client,
        settings,
        dry_run=dry_run,
        batch_events=batch_events,  # type: ignore[arg-type]
    )
    return report
