"""The ``meters`` table: a named filter + aggregation over usage events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["Meter"]


class Meter(Base):
    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(String(1024))
    event_name: Mapped[str] = mapped_column(String(256))
    aggregation: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(256))
    #: The filter as stored JSON: see :mod:`spanledger.billing.meters.filters` for its grammar.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
