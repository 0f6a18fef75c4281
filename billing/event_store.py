"""Writing ``usage_events`` rows in bulk, at the speed of the database driver.

:func:`~spanledger.billing.ingest.ingest` stores thousands of events per transaction, and SQLAlchemy's
per-row statement machinery (``INSERT … RETURNING`` batched as "insertmanyvalues", a dict per row)
cost more than the database itself. Everything here runs under the ingest lock, which serialises every
writer of ``usage_events``, and that makes a plainer path exact:

- which dedupe keys are already stored is one indexed ``SELECT`` (no concurrent writer can add one
  before we insert);
- sequence numbers are taken before the insert — on SQLite ``max(sequence) + 1 …`` (what SQLite's own
  rowid assignment would give, since no other writer runs), on PostgreSQL from the column's own
  sequence — so no ``RETURNING`` is needed and they still grow in commit order;
- rows go to the driver's ``executemany`` as tuples, converted by the very bind processors SQLAlchemy
  would apply (:func:`_column_converters`), so the stored bytes are the same as through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select, text

from spanledger.billing.models import EventRecord

__all__ = ["EVENT_ROW_COLUMNS", "insert_event_rows", "stored_dedupe_keys", "take_sequences"]

_table = EventRecord.__table__
#: The columns an event row carries, in insert order (every column of ``usage_events``).
EVENT_ROW_COLUMNS: tuple[str, ...] = tuple(column.name for column in _table.columns)
# Bound parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
_KEYS_PER_SELECT = 1000

_Processor = Callable[[Any], Any]
_converters_by_dialect: dict[str, tuple[tuple[int, _Processor], ...]] = {}
_statements_by_dialect: dict[str, str] = {}


def stored_dedupe_keys(connection: Connection, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are already in ``usage_events``."""
    wanted = list(keys)
    found: set[str] = set()
    column = _table.c.dedupe_key
    for start in range(0, len(wanted), _KEYS_PER_SELECT):
        chunk = wanted[start : start + _KEYS_PER_SELECT]
        found.update(connection.scalars(select(column).where(column.in_(chunk))))
    return found


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


def insert_event_rows(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert complete rows (every column in :data:`EVENT_ROW_COLUMNS`, ``sequence`` included)."""
    if not rows:
        return
    converters = _column_converters(connection)
    parameters = []
    for row in rows:
        values = list(_row_values(row))
        for position, processor in converters:
            value = values[position]
            if value is not None:
                values[position] = processor(value)
        parameters.append(tuple(values))
    connection.exec_driver_sql(_insert_statement(connection), parameters)


_row_values = itemgetter(*EVENT_ROW_COLUMNS)


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
        statement = f"INSERT INTO {quote(_table.name)} ({columns}) VALUES ({values})"
        _statements_by_dialect[dialect.name] = statement
    return statement
