"""Writing ``usage_events`` rows in bulk, at the speed of the database driver.

:func:`~spanledger.billing.ingest.ingest` stores thousands of events per transaction, and SQLAlchemy's
per-row statement machinery (``INSERT … RETURNING`` batched as "insertmanyvalues", a dict per row)
cost more than the database itself. Everything here runs under the ingest lock, which serialises every
writer of ``usage_events``, and that makes a plainer path exact:

- sequence numbers are taken before the insert — on SQLite ``max(sequence) + 1 …`` (what SQLite's own
  rowid assignment would give, since no other writer runs), on PostgreSQL from the column's own
  sequence — so no ``RETURNING`` is needed and they still grow in commit order;
- rows go to the driver's ``executemany`` through :func:`~spanledger.billing.driver_executemany.executemany`,
  converted to exactly what SQLAlchemy's bind processors give, so the stored bytes are the same as
  through the ORM (a batch's shared ``received_at`` and repeated metadata documents converted once);
- ``ON CONFLICT (dedupe_key) DO NOTHING`` skips what is stored already, and the driver's row count
  says whether anything was skipped; only then is one ``SELECT`` needed to tell which rows went in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from spanledger.billing.driver_executemany import executemany
from spanledger.billing.models import EventRecord

__all__ = ["insert_event_rows", "take_sequences"]

_table = EventRecord.__table__
# Bound parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
_KEYS_PER_SELECT = 1000

#: Every column of ``usage_events``; a key that is stored already is skipped.
_INSERT_NEW = {
    "sqlite": sqlite.insert(_table).on_conflict_do_nothing(index_elements=["dedupe_key"]),
    "postgresql": postgresql.insert(_table).on_conflict_do_nothing(index_elements=["dedupe_key"]),
}

# Built once: building a statement costs more than running it, and this runs for every batch.
_HIGHEST_SEQUENCE = select(func.max(_table.c.sequence))
_STORED_SEQUENCES = select(_table.c.sequence).where(
    _table.c.sequence.in_(bindparam("sequences", expanding=True))
)
_NEXT_SEQUENCES = text(
    "SELECT nextval(pg_get_serial_sequence('usage_events', 'sequence')) FROM generate_series(1, :count)"
)


def take_sequences(connection: Connection, count: int) -> list[int]:
    """``count`` new, increasing sequence numbers (call under the ingest lock)."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        return sorted(connection.scalars(_NEXT_SEQUENCES, {"count": count}))
    highest = connection.scalar(_HIGHEST_SEQUENCE) or 0
    return list(range(highest + 1, highest + 1 + count))


def insert_event_rows(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert complete rows (every column of ``usage_events``, ``sequence`` included) whose dedupe key
    is not stored yet; return the sequences of the rows actually inserted."""
    if not rows:
        return []
    result = executemany(connection, _INSERT_NEW[connection.dialect.name], rows)
    inserted = result.rowcount if result is not None else 0
    sequences = [row["sequence"] for row in rows]
    if inserted == len(rows):
        return sequences
    # Some keys were stored already (a retried export): find which rows went in. The sequences were
    # taken under the ingest lock, so no other row can hold one of them.
    stored: set[int] = set()
    for start in range(0, len(sequences), _KEYS_PER_SELECT):
        chunk = sequences[start : start + _KEYS_PER_SELECT]
        stored.update(connection.scalars(_STORED_SEQUENCES, {"sequences": chunk}))
    return [sequence for sequence in sequences if sequence in stored]
