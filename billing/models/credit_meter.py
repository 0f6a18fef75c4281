"""The ``credit_meters`` table: which meters consume credits, and how many units one credit buys."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal

__all__ = ["CreditMeter"]


class CreditMeter(Base):
    __tablename__ = "credit_meters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), unique=True)
    units_per_credit: Mapped[Decimal] = mapped_column(ExactDecimal(12))
