"""The ``usage_rollups`` table: usage events summed per customer, hour and dimensions.

One row holds every event of one customer in one UTC hour with the same event name, provider,
operation, request model and response model — the *dimensions* a meter can filter or group on
without reading the events. For each numeric event field it keeps the sum, the number of non-NULL
values, the minimum and the maximum, which answers ``count``, ``sum``, ``max``, ``min`` and ``avg``
for every meter whose filter and grouping use only dimensions (see
:mod:`spanledger.billing.rollups`). Rows are kept exact in the ingest transaction.

The table has no unique constraint: dimensions are nullable, and NULLs are distinct in a unique
index on both databases. Uniqueness of (customer, hour, dimensions) is kept by the writers instead,
which all hold the ingest lock (:mod:`spanledger.billing.models.ingest_state`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["ROLLUP_DIMENSIONS", "ROLLUP_MEASURED_FIELDS", "UsageRollup"]

#: The event columns a rollup row is keyed by, besides customer and hour.
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "event_name",
    "provider",
    "operation",
    "request_model",
    "response_model",
)
#: The numeric event fields a rollup row summarises (``<field>_sum``, ``_count``, ``_min``, ``_max``).
ROLLUP_MEASURED_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "upstream_cost",
)


class UsageRollup(Base):
    __tablename__ = "usage_rollups"
    __table_args__ = (
        Index("ix_usage_rollups_customer_hour", "customer_id", "hour"),
        Index("ix_usage_rollups_hour", "hour"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    #: The start of the UTC hour the events occurred in.
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    event_name: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str | None] = mapped_column(String(256))
    operation: Mapped[str | None] = mapped_column(String(256))
    request_model: Mapped[str | None] = mapped_column(String(256))
    response_model: Mapped[str | None] = mapped_column(String(256))
    event_count: Mapped[int] = mapped_column(BigInteger)
    #: Events whose upstream cost is unknown (NULL).
    unknown_cost_events: Mapped[int] = mapped_column(BigInteger)
    max_sequence: Mapped[int] = mapped_column(BigInteger)

    input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    input_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    input_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    cache_read_input_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    cache_write_input_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_input_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens_count: Mapped[int] = mapped_column(BigInteger)
    output_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens_count: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens_count: Mapped[int] = mapped_column(BigInteger)
    total_tokens_min: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens_max: Mapped[int | None] = mapped_column(BigInteger)
    upstream_cost_sum: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    upstream_cost_count: Mapped[int] = mapped_column(BigInteger)
    upstream_cost_min: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    upstream_cost_max: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
