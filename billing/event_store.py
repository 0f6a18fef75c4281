"""Writing ``usage_events`` rows in bulk, at the speed of the database driver.

:func:`~spanledger.billing.ingest.ingest` stores thousands of events per transaction, and SQLAlchemy's
per-row statement machinery (``INSERT … RETURNING`` batched as "insertmanyvalues", a dict per row)
cost more than the database itself. Everything here runs under the ingest lock, which serialises every
writer of ``usage_events``, and that makes a plainer path exact:

- sequence numbers are taken before the insert — on SQLite ``max(sequence) + 1 …`` (what SQLite's own
  rowid assignment would give, since no other writer runs), on PostgreSQL from the column's own
  sequence — so no ``RETURNING`` is needed and they still grow in commit order;
- rows go to the driver's ``executemany`` as tuples, converted by the very bind processors SQLAlchemy
  would apply (:func:`_column_converters`), so the stored bytes are the same as through the ORM;
- ``ON CONFLICT (dedupe_key) DO NOTHING`` skips what is stored already, and the driver's row count
  says whether anything was skipped; only then is one ``SELECT`` needed to tell which rows went in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select, text

from spanledger.billing.models import EventRecord

__all__ = ["EVENT_ROW_COLUMNS", "insert_event_rows", "take_sequences"]

_table = EventRecord.__table__
#: The columns an event row carries, in insert order (every column of ``usage_events``).
EVENT_ROW_COLUMNS: tuple[str, ...] = tuple(column.name for column in _table.columns)
# Bound parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
_KEYS_PER_SELECT = 1000

_Processor = Callable[[Any], Any]
_converters_by_dialect: dict[str, tuple[tuple[int, _Processor], ...]] = {}
_statements_by_dialect: dict[str, str] = {}


def take_sequences(connection: Connection, count: int) -> list[int]:
    """``count`` new, increasing sequence numbers (call under the ingest lock)."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        numbers = connection.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence('usage_events', 'sequence')) "
                "FROM generate_series(1, :count)"
            ),
            {"count": count},
        )
        return sorted(numbers)
    highest = connection.scalar(select(func.max(_table.c.sequence))) or 0
    return list(range(highest + 1, highest + 1 + count))


def insert_event_rows(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert complete rows (every column in :data:`EVENT_ROW_COLUMNS`, ``sequence`` included) whose
    dedupe key is not stored yet; return the sequences of the rows actually inserted."""
    if not rows:
        return []
    converters = _column_converters(connection)
    parameters = []
    last_seen: list[Any] = [_NOTHING] * len(converters)
    last_converted: list[Any] = [None] * len(converters)
    metadata_documents: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        values = list(_row_values(row))
        for index, (position, processor) in enumerate(converters):
            value = values[position]
            if value is None:
                continue
            if position == _METADATA_POSITION:
                values[position] = _metadata_document(value, processor, metadata_documents)
                continue
            # Many rows share a value (a batch's received_at): convert it once.
            if value is not last_seen[index]:
                last_seen[index] = value
                last_converted[index] = processor(value)
            values[position] = last_converted[index]
        parameters.append(tuple(values))
    inserted = connection.exec_driver_sql(_insert_statement(connection), parameters).rowcount
    sequences = [row["sequence"] for row in rows]
    if inserted == len(rows):
        return sequences
    # Some keys were stored already (a retried export): find which rows went in. The sequences were
    # taken under the ingest lock, so no other row can hold one of them.
    column = _table.c.sequence
    stored: set[int] = set()
    for start in range(0, len(sequences), _KEYS_PER_SELECT):
        chunk = sequences[start : start + _KEYS_PER_SELECT]
        stored.update(connection.scalars(select(column).where(column.in_(chunk))))
    return [sequence for sequence in sequences if sequence in stored]


_row_values = itemgetter(*EVENT_ROW_COLUMNS)
_NOTHING = object()
_METADATA_POSITION = EVENT_ROW_COLUMNS.index("metadata")


def _metadata_document(
    metadata: Mapping[str, Any], processor: _Processor, documents: dict[tuple[Any, ...], Any]
) -> Any:
    """The stored form of ``metadata``, encoded once per distinct document in a batch: the calls of one
    service mostly carry the same resource attributes, so most rows repeat a few documents."""
    try:
        # Types are part of the key: 1, 1.0 and True are equal in Python but not in JSON.
        key = (tuple(metadata.items()), tuple(map(type, metadata.values())))
        document = documents.get(key)
    except TypeError:  # an unhashable value (a list): encode it on its own
        return processor(metadata)
    if document is None:
        document = documents[key] = processor(metadata)
    return document


def _column_converters(connection: Connection) -> tuple[tuple[int, _Processor], ...]:
    """(position, bind processor) of the columns whose values the driver cannot take as they are."""
    dialect = connection.dialect
    converters = _converters_by_dialect.get(dialect.name)
    if converters is None:
        processors = (column.type.dialect_impl(dialect).bind_processor(dialect) for column in _table.columns)
        converters = tuple(
            (position, processor) for position, processor in enumerate(processors) if processor is not None
        )
        _converters_by_dialect[dialect.name] = converters
    return converters


def _insert_statement(connection: Connection) -> str:
    dialect = connection.dialect
    statement = _statements_by_dialect.get(dialect.name)
    if statement is None:
        quote = dialect.identifier_preparer.quote
        placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        columns = ", ".join(quote(name) for name in EVENT_ROW_COLUMNS)
        values = ", ".join(placeholder for _ in EVENT_ROW_COLUMNS)
        statement = (
            f"INSERT INTO {quote(_table.name)} ({columns}) VALUES ({values}) "
            f"ON CONFLICT ({quote('dedupe_key')}) DO NOTHING"
        )
        _statements_by_dialect[dialect.name] = statement
    return statement
