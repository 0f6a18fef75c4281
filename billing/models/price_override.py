"""The ``price_overrides`` table: user upstream prices per million tokens that win over genai-prices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal

__all__ = ["PriceOverrideRecord"]


class PriceOverrideRecord(Base):
    __tablename__ = "price_overrides"
    __table_args__ = (UniqueConstraint("provider", "model", "valid_from"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(256))
    model: Mapped[str] = mapped_column(String(256))
    valid_from: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    input_per_million: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    output_per_million: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    cache_read_per_million: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    cache_write_per_million: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    reasoning_per_million: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
