"""One statement over many rows at the speed of the database driver, for ingest's hot statements.

SQLAlchemy's ``connection.execute(statement, rows)`` rebuilds every row's parameters through the
compiler (defaults, repeated binds, a dict per row): for ingest's bulk ``INSERT`` of events and the
rollup ``UPDATE`` that adds a delta to a cell — some 60 parameters per row — that cost more than the
database itself. :func:`executemany` compiles the statement once per dialect, remembers the order of
its parameters and the bind processor of each (the very ones SQLAlchemy would apply: exact decimals
scaled on SQLite, UTC datetimes, JSON), and hands plain tuples (or dicts, for ``pyformat`` drivers) to
the driver's ``executemany``.

The parameters are built a column at a time: a column the driver takes as it is is read from the rows
by ``operator.itemgetter`` (no Python code per value), a parameter named twice is read once, and bound
constants of the statement (the ``0`` of ``coalesce(x, 0)``) are processed once. A converted column
converts a value only when it is not the previous row's very object (a batch's ``received_at``), and
equal JSON documents (the resource attributes most of a service's calls carry) are encoded once.

The bind processors of the two hot column types, :class:`~spanledger.billing.models.types.UTCDateTime`
and the integer-stored :class:`~spanledger.billing.models.types.ExactDecimal` on SQLite, go through
several Python calls per value. :func:`_quick_processor` gives each a one-step equal for the values it
sees nearly always (a ``datetime`` in ``UTC``; a finite ``Decimal`` within its places), handing any
other value to SQLAlchemy's processor, and uses it only after checking it agrees with that processor on
probe values at preparation; ``tests/billing/test_driver_executemany_quick.py`` checks they agree on
varied values on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, getcontext
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeEngine

from spanledger.billing.models.types import ExactDecimal, UTCDateTime

__all__ = ["executemany"]

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Parameter:
    """One placeholder of a compiled statement."""

    name: str
    #: Whether the rows supply its value; if not, :attr:`constant` is the statement's own value, processed.
    supplied: bool
    constant: Any = None
    #: What turns a row's value into the driver's (``None``: the driver takes it as it is).
    processor: _Processor | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    #: The parameter names in placeholder order (positional drivers) or the names to pass (named).
    names: tuple[str, ...]
    positional: bool
    parameters: tuple[_Parameter, ...]


_prepared: dict[tuple[int, str, frozenset[str]], tuple[ClauseElement, _Prepared]] = {}


def executemany(
    connection: Connection, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]
) -> CursorResult[Any] | None:
    """Run ``statement`` once per row of ``rows`` (dicts keyed by bind name), like
    ``connection.execute(statement, rows)`` but without per-row compiler work."""
    if not rows:
        return None
    prepared = _prepare(statement, connection.dialect, rows[0].keys())
    return connection.exec_driver_sql(prepared.sql, _driver_parameters(prepared, rows))


def _driver_parameters(prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The driver's parameters for ``rows``: a tuple per row, or a dict for a named paramstyle."""
    count = len(rows)
    documents: dict[tuple[Any, ...], Any] = {}
    columns: dict[str, list[Any]] = {}
    ordered: list[list[Any]] = []
    for parameter in prepared.parameters:
        column = columns.get(parameter.name)
        if column is None:
            if not parameter.supplied:
                column = [parameter.constant] * count
            else:
                column = list(map(itemgetter(parameter.name), rows))
                if parameter.processor is not None:
                    column = _converted(column, parameter.processor, documents)
            columns[parameter.name] = column
        ordered.append(column)
    values: Iterable[tuple[Any, ...]] = zip(*ordered, strict=True) if ordered else [()] * count
    if prepared.positional:
        return list(values)
    return [dict(zip(prepared.names, row, strict=True)) for row in values]


def _converted(column: list[Any], processor: _Processor, documents: dict[tuple[Any, ...], Any]) -> list[Any]:
    """``column`` through ``processor``: ``None`` stays ``None``, the previous row's very object is not
    converted again, and a dict (a JSON document) equal to one converted before reuses its result."""
    converted: list[Any] = []
    append = converted.append
    last: Any = _NOTHING
    last_converted: Any = None
    for value in column:
        if value is not last:
            last = value
            if value is None:
                last_converted = None
            elif type(value) is dict:
                last_converted = _document(value, processor, documents)
            else:
                last_converted = processor(value)
        append(last_converted)
    return converted


def _document(document: dict[str, Any], processor: _Processor, documents: dict[tuple[Any, ...], Any]) -> Any:
    """A dict parameter is a JSON document: equal ones (equal keys and values, in the same order and
    *of equal types*: 1, 1.0 and True are equal in Python, not in JSON) are encoded once."""
    try:
        # One flat tuple (its length tells the key count): a tuple per item would cost more, and
        # every container allocated brings the next garbage collection closer.
        values = document.values()
        key = (*document, *map(type, document), *values, *map(type, values))
        converted = documents.get(key)
    except TypeError:  # an unhashable value (a list): encode it on its own
        return processor(document)
    if converted is None:
        converted = documents[key] = processor(document)
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
    parameters: list[_Parameter] = []
    for name in names:
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in supplied_names:
            quick = None if processor is None else _quick_processor(bind.type, dialect, processor)
            parameters.append(_Parameter(name, supplied=True, processor=quick))
            continue
        if bind.required:
            raise KeyError(f"no value for bound parameter {name!r}")
        value = bind.effective_value
        constant = value if processor is None or value is None else processor(value)
        parameters.append(_Parameter(name, supplied=False, constant=constant))
    prepared = _Prepared(compiled.string, names, positional, tuple(parameters))
    _prepared[key] = (statement, prepared)  # keeps the statement alive, so its id is never reused
    return prepared


def _quick_processor(type_: TypeEngine[Any], dialect: Dialect, processor: _Processor) -> _Processor:
    """A quicker equal of SQLAlchemy's ``processor`` for ``type_``, or ``processor`` itself."""
    quick: _Processor | None = None
    probes: tuple[Any, ...] = ()
    if isinstance(type_, UTCDateTime):
        impl_processor = type_.dialect_impl(dialect).impl_instance.bind_processor(dialect)
        if dialect.name == "sqlite":
            quick, probes = _quick_sqlite_datetime(processor), _DATETIME_PROBES
        elif impl_processor is None:
            quick, probes = _quick_utc_datetime(processor), _DATETIME_PROBES
    elif isinstance(type_, ExactDecimal) and dialect.name == "sqlite" and type_.sqlite_storage == "integer":
        quick, probes = _quick_sqlite_decimal(processor, type_.places), _DECIMAL_PROBES
    if quick is None or not all(_outcome(quick, probe) == _outcome(processor, probe) for probe in probes):
        return processor
    return quick


def _outcome(convert: _Processor, value: Any) -> tuple[Any, ...]:
    """What ``convert`` makes of ``value``, as a comparable tuple: the result and its type, or the error."""
    try:
        result = convert(value)
    except Exception as exc:  # the outcome compared, not an error handled
        return ("raises", type(exc), str(exc))
    return ("returns", type(result), result)


def _quick_sqlite_datetime(processor: _Processor) -> _Processor:
    # UTCDateTime drops the zone of a UTC datetime and SQLite's DATETIME writes what is left with its
    # storage format; the same format, filled from a tuple (quicker than from a dict, or isoformat).
    def convert(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC:
            return _SQLITE_DATETIME % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )
        return processor(value)

    return convert


#: SQLAlchemy's SQLite DATETIME storage format, positionally.
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _quick_utc_datetime(processor: _Processor) -> _Processor:
    # A datetime already in UTC is handed over as it is (astimezone(UTC) returns the very object).
    def convert(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC:
            return value
        return processor(value)

    return convert


#: SQLite stores integers in 64 bits; a larger scaled decimal is left to SQLAlchemy's processor.
_INT64_LIMIT = 2**63
#: Decimal digits that always hold a scaled value below that limit (exactly, for quantize and scaleb).
_INT64_DIGITS = 19


def _quick_sqlite_decimal(processor: _Processor, places: int) -> _Processor:
    # ExactDecimal checks the value is finite and has at most ``places`` places, then stores
    # value * 10**places as an integer. The same integer, exactly, from the value's ratio: it has at
    # most ``places`` places exactly when its reduced denominator divides 10**places.
    scale = 10**places

    def convert(value: Any) -> Any:
        if type(value) is Decimal and value.is_finite():
            numerator, denominator = value.as_integer_ratio()
            if scale % denominator == 0:
                scaled = numerator * (scale // denominator)
                if -_INT64_LIMIT < scaled < _INT64_LIMIT and getcontext().prec >= _INT64_DIGITS:
                    return scaled
        return processor(value)

    return convert


_DATETIME_PROBES = (
    datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
    datetime(2026, 11, 3, 10, 4, 5, 6, tzinfo=UTC),
    datetime(5, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
)
_DECIMAL_PROBES = (
    Decimal(0),
    Decimal("-0.000000"),
    Decimal("0.000000000001"),
    Decimal("1.5"),
    Decimal("-123456.123456789012"),
    Decimal("4E+3"),
    Decimal("1.000000000000000000000000000000"),
)
