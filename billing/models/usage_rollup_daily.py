"""The ``usage_rollups_daily`` table: the hourly rollups summed per customer, UTC day and dimensions.

One row holds the hourly cells (:mod:`spanledger.billing.models.usage_rollup`) of one customer on one
UTC day with the same dimensions. It keeps only what adds up — event count, unknown-cost events, and
per measured field the sum and the non-NULL count — so new events are applied by adding, and a change
that can move or re-price events (a merge, re-pricing) recomputes the customer-days it touches from
their hourly cells (:mod:`spanledger.billing.rollups.maintenance`). No minimum or maximum: a report
over whole days that needs them reads the hourly cells.

It exists for reports over many days (admin Cost Insights, the margin report): a year of a customer
is 365 rows here instead of up to 8,760 hourly cells. Like the hourly table it has no unique
constraint (nullable dimensions); its writers all hold the ingest lock.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal

__all__ = ["UsageRollupDaily"]


class UsageRollupDaily(Base):
    __tablename__ = "usage_rollups_daily"
    __table_args__ = (
        Index("ix_usage_rollups_daily_customer_day", "customer_id", "day"),
        Index("ix_usage_rollups_daily_day", "day"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    #: The UTC calendar day the events occurred on.
    day: Mapped[date] = mapped_column(Date)
    event_name: Mapped[str] = mapped_column(String(256))
    provider: Mapped[str | None] = mapped_column(String(256))
    operation: Mapped[str | None] = mapped_column(String(256))
    request_model: Mapped[str | None] = mapped_column(String(256))
    response_model: Mapped[str | None] = mapped_column(String(256))
    event_count: Mapped[int] = mapped_column(BigInteger)
    #: Events whose upstream cost is unknown (NULL).
    unknown_cost_events: Mapped[int] = mapped_column(BigInteger)

    input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    cache_read_input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    cache_write_input_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    cache_write_input_tokens_count: Mapped[int] = mapped_column(BigInteger)
    output_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens_count: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    reasoning_tokens_count: Mapped[int] = mapped_column(BigInteger)
    total_tokens_sum: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens_count: Mapped[int] = mapped_column(BigInteger)
    upstream_cost_sum: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    upstream_cost_count: Mapped[int] = mapped_column(BigInteger)
