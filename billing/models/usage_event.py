"""The ``usage_events`` table: one immutable row per billable LLM call.

``sequence`` is the ingestion sequence number. Ingest transactions are serialised by the row lock
on ``ingest_state`` (see :mod:`spanledger.billing.ingest`), so sequence numbers grow in commit
order: an invoice line that records "events up to sequence N" covers exactly the committed events
with ``sequence <= N``, and nothing committed later can appear below that mark.

Hourly rollups (issue 8) will be a separate table keyed by (meter, customer, group, hour),
maintained in the ingest transaction; the ``(customer_id, occurred_at)`` index is what the rollup
backfill and exact ``unique`` queries scan.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["FOREIGN_COST_CONDITION", "JSON_DOCUMENT", "EventRecord"]

#: JSON on SQLite, JSONB (indexable, ``->>`` operators) on PostgreSQL.
JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")
#: The partial index ``ix_usage_events_foreign_cost``'s condition, literally (a query must repeat it
#: word for word, with no bound parameter, for SQLite to use the index).
FOREIGN_COST_CONDITION = "upstream_cost_currency <> 'USD'"


class EventRecord(Base):
    """A stored usage event (the ORM twin of :class:`spanledger.billing.usage_event.UsageEvent`)."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_customer_occurred", "customer_id", "occurred_at"),
        Index("ix_usage_events_occurred", "occurred_at"),
        # Costs in a currency other than USD (price overrides only; rollups do not key on currency):
        # the few events a USD margin takes out of the rollups' cost sums (see rollups/queries.py).
        Index(
            "ix_usage_events_foreign_cost", "occurred_at",
            postgresql_where=text(FOREIGN_COST_CONDITION), sqlite_where=text(FOREIGN_COST_CONDITION),
        ),
    )

    sequence: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dedupe_key: Mapped[str] = mapped_column(String(512), unique=True)
    event_name: Mapped[str] = mapped_column(String(256))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    provider: Mapped[str | None] = mapped_column(String(256))
    operation: Mapped[str | None] = mapped_column(String(256))
    request_model: Mapped[str | None] = mapped_column(String(256))
    response_model: Mapped[str | None] = mapped_column(String(256))
    response_id: Mapped[str | None] = mapped_column(String(256))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int | None] = mapped_column(BigInteger)
    upstream_cost: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    upstream_cost_currency: Mapped[str | None] = mapped_column(String(3))
    price_source: Mapped[str | None] = mapped_column(String(256))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))
    event_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON_DOCUMENT, default=dict)
