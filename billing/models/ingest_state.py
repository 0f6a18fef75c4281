"""The ``ingest_state`` table: one row whose lock serialises ingest transactions.

Every ingest transaction first updates this row. On PostgreSQL the row lock, and on SQLite the
write lock, is then held until commit, so ``usage_events.sequence`` values are handed out in commit
order (see :mod:`spanledger.billing.models.usage_event`). ``ingested_events`` counts stored events.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Connection, Integer, Table, event, insert
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base
from spanledger.billing.models.types import UTCDateTime

__all__ = ["INGEST_STATE_ID", "IngestState"]

INGEST_STATE_ID = 1


class IngestState(Base):
    __tablename__ = "ingest_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ingested_events: Mapped[int] = mapped_column(BigInteger, default=0)
    last_ingest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@event.listens_for(IngestState.__table__, "after_create")
def _insert_the_row(target: Table, connection: Connection, **_: object) -> None:
    connection.execute(insert(target).values(id=INGEST_STATE_ID, ingested_events=0))
