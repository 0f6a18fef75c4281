"""One statement over many rows at the speed of the database driver, for ingest's hot statements.

SQLAlchemy's ``connection.execute(statement, rows)`` rebuilds every row's parameters through the
compiler (defaults, repeated binds, a dict per row): for the rollup ``UPDATE`` that adds a delta to a
cell — some 60 parameters per row — that cost more than the database itself. :func:`executemany`
compiles the statement once per dialect, remembers the order of its parameters and the bind processor
of each (the very ones SQLAlchemy would apply: exact decimals scaled on SQLite, UTC datetimes), and
hands plain tuples (or dicts, for ``pyformat`` drivers) to the driver's ``executemany``. Bound
constants of the statement (the ``0`` of ``coalesce(x, 0)``) are processed once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
    processors: tuple[_Processor | None, ...]
    #: Processed values of the statement's own bound constants, by name.
    constants: Mapping[str, Any]


_prepared: dict[tuple[int, str, frozenset[str]], tuple[ClauseElement, _Prepared]] = {}


def executemany(
    connection: Connection, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> CursorResult[Any] | None:
    """Run ``statement`` once per row of ``rows`` (dicts keyed by bind name), like
    ``connection.execute(statement, rows)`` but without per-row compiler work."""
    if not rows:
        return None
    prepared = _prepare(statement, connection.dialect, rows[0].keys())
    constants = prepared.constants
    parameters: list[Any] = []
    for row in rows:
        values = []
        for name, processor in zip(prepared.names, prepared.processors, strict=True):
            if name in constants:
                values.append(constants[name])
                continue
            value = row[name]
            values.append(value if processor is None or value is None else processor(value))
        if prepared.positional:
            parameters.append(tuple(values))
        else:
            parameters.append(dict(zip(prepared.names, values, strict=True)))
    return connection.exec_driver_sql(prepared.sql, parameters)


def _prepare(statement: ClauseElement, dialect: Dialect, supplied: Any) -> _Prepared:
    supplied_names = frozenset(supplied)
    key = (id(statement), dialect.name, supplied_names)
    cached = _prepared.get(key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    compiled = statement.compile(dialect=dialect)
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
    processors: list[_Processor | None] = []
    constants: dict[str, Any] = {}
    for name in names:
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        processors.append(processor)
        if name not in supplied_names:
            if bind.required:
                raise KeyError(f"no value for bound parameter {name!r}")
            value = bind.effective_value
            constants[name] = value if processor is None or value is None else processor(value)
    prepared = _Prepared(compiled.string, names, positional, tuple(processors), constants)
    _prepared[key] = (statement, prepared)  # keeps the statement alive, so its id is never reused
    return prepared
