"""The ``credit_entries`` table: the append-only credits ledger (see :mod:`spanledger.billing.credits`).

Rows are only ever inserted. ``idempotency_key`` makes a plan grant for a period, a period close or
an overage settlement happen once, however often the run repeats. ``event_sequence`` ties a
consumption entry to the usage event it was derived from.

``ix_credit_entries_unlimited`` holds only the unlimited grants (a handful per account, however long
the ledger grows): ingest reads them for every batch to know which usage an unlimited pack covers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["UNLIMITED_CONDITION", "CreditEntryRecord"]

#: The partial index ``ix_credit_entries_unlimited``'s condition, literally (a query must repeat it
#: word for word for SQLite to use the index; a bare boolean column reads the same on PostgreSQL).
UNLIMITED_CONDITION = "unlimited"


class CreditEntryRecord(Base):
    __tablename__ = "credit_entries"
    __table_args__ = (
        Index("ix_credit_entries_account", "customer_id", "meter_id", "id"),
        Index(
            "ix_credit_entries_unlimited", "customer_id", "meter_id",
            postgresql_where=text(UNLIMITED_CONDITION), sqlite_where=text(UNLIMITED_CONDITION),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(12))
    credits: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unlimited: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(512))
    event_sequence: Mapped[int | None] = mapped_column(BigInteger, index=True)
    pack_code: Mapped[str | None] = mapped_column(String(128))
    pack_price: Mapped[Decimal | None] = mapped_column(ExactDecimal(12))
    pack_currency: Mapped[str | None] = mapped_column(String(3))
    idempotency_key: Mapped[str | None] = mapped_column(String(256), unique=True)
