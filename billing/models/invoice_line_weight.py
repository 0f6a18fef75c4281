"""The ``invoice_line_weights`` table: how a finalized usage line's events split by model, provider
and day.

One row per (line, model, provider, UTC day) group of the events the line covers (its recorded
selection), with the group's metered quantity (``weight``: the event count for a ``count`` meter,
else the sum of the metered field) and its number of events. Written once, in the transaction that
finalizes the invoice — a finalized invoice never changes, so neither does its split — and read by
the margin report and the admin Cost Insights view to attribute each line's amount to models and days
without reading its events again. Drafts have no rows: their split is computed when read.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal

__all__ = ["InvoiceLineWeight"]


class InvoiceLineWeight(Base):
    __tablename__ = "invoice_line_weights"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    line_id: Mapped[int] = mapped_column(ForeignKey("invoice_lines.id", ondelete="CASCADE"), index=True)
    #: ``coalesce(response_model, request_model)`` of the group's events (NULL: unknown).
    model: Mapped[str | None] = mapped_column(String(256))
    provider: Mapped[str | None] = mapped_column(String(256))
    #: The UTC day of the group's events, ``YYYY-MM-DD``.
    day: Mapped[str] = mapped_column(String(10))
    # Text on SQLite: a month of tokens can exceed the scaled-integer range (see models/types.py).
    weight: Mapped[Decimal] = mapped_column(ExactDecimal(12, sqlite_storage="text"))
    events: Mapped[int] = mapped_column(BigInteger)
