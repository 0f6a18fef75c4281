"""Engines and sessions: the one place that knows how to talk to SQLite and PostgreSQL.

SQLite (the embedded default) is opened with WAL journaling, foreign keys on and a busy timeout,
and every transaction starts with ``BEGIN IMMEDIATE``: SQLite allows one writer at a time, and
taking the write lock up front makes a second writer wait (up to the busy timeout) instead of
failing half-way with "database is locked". PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.environment_variables import SPANLEDGER_DATABASE_URL
from spanledger.billing.errors import ConfigurationError, StorageUnavailableError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "create_engine_from_url",
    "database_url",
    "make_session_factory",
    "storage_errors",
]

DEFAULT_DATABASE_URL = "sqlite:///spanledger.db"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url`` if given, else ``SPANLEDGER_DATABASE_URL``, else the SQLite default."""
    return url or os.environ.get(SPANLEDGER_DATABASE_URL) or DEFAULT_DATABASE_URL


def create_engine_from_url(
    url: str | None = None, *, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS, **engine_options: Any
) -> Engine:
    """Create an engine for ``url`` (see :func:`database_url`), configured for the ledger.

    ``sqlite_busy_timeout`` is how long a SQLite writer waits for the write lock before the
    operation fails with :class:`StorageUnavailableError`.
    """
    raw = database_url(url)
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"database URL {raw!r} is not a SQLAlchemy URL; "
            "use sqlite:///path.db or postgresql+psycopg://user@host/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"database URL {raw!r} names {backend!r}; spanledger supports sqlite and postgresql"
        )
    try:
        if backend == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": sqlite_busy_timeout}, **engine_options)
            _configure_sqlite(engine, sqlite_busy_timeout)
        else:
            engine_options.setdefault("pool_pre_ping", True)
            engine = create_engine(parsed, **engine_options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigurationError(f"cannot use database URL {raw!r}: {exc}") from exc
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (no implicit reload)."""
    return sessionmaker(engine, expire_on_commit=False)


_SCHEMA_MISSING_MARKERS = ("no such table", "no such column", "does not exist")


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate database failures into spanledger errors at the storage boundary.

    A database that is down, refusing connections or locked becomes
    :class:`StorageUnavailableError` (retry later); a missing table becomes
    :class:`ConfigurationError` telling the user to run ``spanledger db upgrade``.
    """
    try:
        yield
    except DBAPIError as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if any(marker in message for marker in _SCHEMA_MISSING_MARKERS) and "database" not in message:
            raise ConfigurationError(
                f"the database has no spanledger schema ({message.splitlines()[0]}); "
                "run `spanledger db upgrade` first"
            ) from exc
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise StorageUnavailableError(
                f"the database is unavailable ({message.splitlines()[0] if message else 'no detail'}); "
                "retry later"
            ) from exc
        raise
