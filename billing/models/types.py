"""Column types that behave identically on SQLite and PostgreSQL.

- :class:`UTCDateTime`: timezone-aware UTC datetimes in and out. PostgreSQL stores ``timestamptz``;
  SQLite has no timezone support, so the value is stored as naive UTC and made aware again on read.
- :class:`ExactDecimal`: a ``Decimal`` with a fixed number of decimal places (12 by default, enough
  for per-token prices). PostgreSQL stores ``NUMERIC(38, places)``. SQLite would store NUMERIC as a
  binary float, so there the value is stored as a scaled 64-bit integer (``value * 10**places``):
  ``SUM``, ``MIN``, ``MAX`` and comparisons then stay exact in SQL, and results come back as
  ``Decimal``. The scaled integer bounds one stored value or one SQLite ``SUM`` to about 9.2 million
  currency units at 12 places; SQLite raises an overflow error past that instead of answering
  wrongly — use PostgreSQL at that scale.

Quantities (an invoice line's token count) can pass that bound on a busy month, so such columns are
declared ``ExactDecimal(12, sqlite_storage="text")``: on SQLite they are stored as the exact decimal
text instead (never summed or compared in SQL); PostgreSQL is unchanged.

Binding a value with more decimal places than the column keeps raises ``ValueError``: a silent
rounding here would be a second rounding place, and money is rounded in exactly one
(:mod:`spanledger.billing.pricing`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import BigInteger, DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ExactDecimal", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: spanledger stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact fixed-point ``Decimal`` column (see the module docstring for the SQLite encoding)."""

    impl = Numeric(38, 12)
    cache_ok = True

    def __init__(self, places: int = 12, sqlite_storage: Literal["integer", "text"] = "integer") -> None:
        super().__init__()
        self.places = places
        self.sqlite_storage = sqlite_storage
        self._quantum = Decimal(1).scaleb(-places)
        self._scale = 10**places

    def __repr__(self) -> str:
        if self.sqlite_storage == "text":
            return f"ExactDecimal({self.places}, sqlite_storage='text')"
        return f"ExactDecimal({self.places})"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64) if self.sqlite_storage == "text" else BigInteger())
        return dialect.type_descriptor(Numeric(38, self.places, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Decimal | int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise ValueError(f"float {value!r} given for an exact Decimal column; pass a Decimal or a str")
        exact = Decimal(value)
        if not exact.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        if exact != exact.quantize(self._quantum):
            raise ValueError(f"{value} has more than {self.places} decimal places")
        if dialect.name == "sqlite":
            if self.sqlite_storage == "text":
                return str(exact.quantize(self._quantum))
            return int(exact.scaleb(self.places))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite" and self.sqlite_storage == "text":
            return Decimal(value).quantize(self._quantum)
        if dialect.name == "sqlite":
            if isinstance(value, float):
                raise ValueError("SQLite returned a float for an exact Decimal column (AVG is not exact)")
            return Decimal(int(value)).scaleb(-self.places).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        # Literals compared with this column are encoded the same way (scaled on SQLite).
        return self
