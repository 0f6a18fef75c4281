"""One statement over many rows at the speed of the database driver, for ingest's hot statements.

SQLAlchemy's ``connection.execute(statement, rows)`` rebuilds every row's parameters through the
compiler (defaults, repeated binds, a dict per row): for ingest's bulk ``INSERT`` of events and the
rollup ``UPDATE`` that adds a delta to a cell — some 60 parameters per row — that cost more than the
database itself. :func:`executemany` compiles the statement once per dialect, remembers the order of
its parameters and the bind processor of each (the very ones SQLAlchemy would apply: exact decimals
scaled on SQLite, UTC datetimes, JSON), and hands plain tuples (or dicts, for ``pyformat`` drivers) to
the driver's ``executemany``. Bound constants of the statement (the ``0`` of ``coalesce(x, 0)``) are
processed once, and so is a value many rows share: the same object as the previous row's (a batch's
``received_at``), or an equal JSON document (the resource attributes most of a service's calls carry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["executemany"]

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    #: The parameter names in placeholder order (positional drivers) or the names to pass (named).
    names: tuple[str, ...]
    positional: bool
    #: The row's values for the parameters at :attr:`supplied` positions, in that order.
    values_of: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    supplied: tuple[int, ...]
    #: Every parameter's value with the statement's own constants processed; the rest filled per row.
    template: tuple[Any, ...]
    #: (position, bind processor) of the supplied parameters the driver cannot take as they are.
    converters: tuple[tuple[int, _Processor], ...]


_prepared: dict[tuple[int, str, frozenset[str]], tuple[ClauseElement, _Prepared]] = {}


def executemany(
    connection: Connection, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> CursorResult[Any] | None:
    """Run ``statement`` once per row of ``rows`` (dicts keyed by bind name), like
    ``connection.execute(statement, rows)`` but without per-row compiler work."""
    if not rows:
        return None
    prepared = _prepare(statement, connection.dialect, rows[0].keys())
    convert = _Conversions(prepared.converters)
    every_parameter = len(prepared.supplied) == len(prepared.names)
    parameters: list[Any] = []
    for row in rows:
        if every_parameter:
            values = list(prepared.values_of(row))
        else:
            values = list(prepared.template)
            for position, value in zip(prepared.supplied, prepared.values_of(row), strict=True):
                values[position] = value
        convert(values)
        if prepared.positional:
            parameters.append(tuple(values))
        else:
            parameters.append(dict(zip(prepared.names, values, strict=True)))
    return connection.exec_driver_sql(prepared.sql, parameters)


class _Conversions:
    """Applies the bind processors to one call's rows, converting a shared value once."""

    def __init__(self, converters: tuple[tuple[int, _Processor], ...]) -> None:
        self._converters = converters
        self._last_seen: list[Any] = [_NOTHING] * len(converters)
        self._last_converted: list[Any] = [None] * len(converters)
        self._documents: dict[tuple[Any, ...], Any] = {}

    def __call__(self, values: list[Any]) -> None:
        for index, (position, processor) in enumerate(self._converters):
            value = values[position]
            if value is None:
                continue
            if value is self._last_seen[index]:
                values[position] = self._last_converted[index]
                continue
            converted = self._document(value, processor) if type(value) is dict else processor(value)
            self._last_seen[index], self._last_converted[index] = value, converted
            values[position] = converted

    def _document(self, document: dict[str, Any], processor: _Processor) -> Any:
        """A dict parameter is a JSON document: equal ones (equal values *of equal types*: 1, 1.0 and
        True are equal in Python, not in JSON) are encoded once."""
        try:
            key = (tuple(document.items()), tuple(map(type, document.values())))
            converted = self._documents.get(key)
        except TypeError:  # an unhashable value (a list): encode it on its own
            return processor(document)
        if converted is None:
            converted = self._documents[key] = processor(document)
        return converted


_NOTHING = object()


def _prepare(statement: ClauseElement, dialect: Dialect, supplied: Any) -> _Prepared:
    supplied_names = frozenset(supplied)
    key = (id(statement), dialect.name, supplied_names)
    cached = _prepared.get(key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    compiled = statement.compile(dialect=dialect)
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
    template: list[Any] = []
    supplied_positions: list[int] = []
    converters: list[tuple[int, _Processor]] = []
    for position, name in enumerate(names):
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in supplied_names:
            template.append(None)
            supplied_positions.append(position)
            if processor is not None:
                converters.append((position, processor))
            continue
        if bind.required:
            raise KeyError(f"no value for bound parameter {name!r}")
        value = bind.effective_value
        template.append(value if processor is None or value is None else processor(value))
    getter = itemgetter(*(names[position] for position in supplied_positions))
    values_of = getter if len(supplied_positions) > 1 else lambda row: (getter(row),)
    prepared = _Prepared(
        compiled.string,
        names,
        positional,
        values_of,
        tuple(supplied_positions),
        tuple(template),
        tuple(converters),
    )
    _prepared[key] = (statement, prepared)  # keeps the statement alive, so its id is never reused
    return prepared
