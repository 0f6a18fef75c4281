"""The ``credit_packs`` table: credits sold for a price (definition JSON in the catalog format)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["CreditPackRecord"]


class CreditPackRecord(Base):
    __tablename__ = "credit_packs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
