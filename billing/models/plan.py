"""The ``plans`` table: a plan's code, name, currency and its definition (base fee, prices, seats,
credit grants) as JSON in the catalog format (see :mod:`spanledger.billing.catalog`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["PlanRecord"]


class PlanRecord(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    currency: Mapped[str] = mapped_column(String(3))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
