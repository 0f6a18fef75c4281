"""Engines: the SQLite defaults, URL errors, and database failures translated at the boundary."""

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from spanledger.billing.db import (
    DEFAULT_DATABASE_URL,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    create_engine_from_url,
    database_url,
    make_session_factory,
)
from spanledger.billing.errors import ConfigurationError, StorageUnavailableError
from spanledger.billing.ingest import ingest
from spanledger.billing.models import Base
from spanledger.billing.usage_event import UsageEvent


def test_url_precedence(monkeypatch):
    monkeypatch.delenv("SPANLEDGER_DATABASE_URL", raising=False)
    assert database_url() == DEFAULT_DATABASE_URL == "sqlite:///spanledger.db"
    monkeypatch.setenv("SPANLEDGER_DATABASE_URL", "sqlite:///from-env.db")
    assert database_url() == "sqlite:///from-env.db"
    assert database_url("sqlite:///argument.db") == "sqlite:///argument.db"


def test_sqlite_is_opened_with_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == int(
            SQLITE_BUSY_TIMEOUT_SECONDS * 1000
        )
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg_3():
    engine = create_engine_from_url("postgresql://postgres@127.0.0.1:5432/test")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a SQLAlchemy URL"),
        ("mysql://root@localhost/db", "supports sqlite and postgresql"),
    ],
)
def test_bad_urls_are_configuration_errors(url, message):
    with pytest.raises(ConfigurationError, match=message):
        create_engine_from_url(url)


def _event(key: str) -> UsageEvent:
    return UsageEvent(dedupe_key=key, occurred_at=datetime(2026, 11, 1, tzinfo=UTC), input_tokens=1)


def test_a_missing_schema_says_run_db_upgrade(tmp_path):
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    with make_session_factory(engine)() as session, pytest.raises(ConfigurationError, match="db upgrade"):
        ingest(session, [_event("a")])
    engine.dispose()


def test_a_locked_sqlite_ledger_is_unavailable_not_broken(tmp_path):
    path = tmp_path / "ledger.db"
    engine = create_engine_from_url(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    engine = create_engine_from_url(f"sqlite:///{path}", sqlite_busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with (
            make_session_factory(engine)() as session,
            pytest.raises(StorageUnavailableError, match="retry later"),
            session.begin(),
        ):
            ingest(session, [_event("a")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with make_session_factory(engine)() as session, session.begin():
        assert ingest(session, [_event("a")]).inserted == 1
    engine.dispose()


def test_an_unreachable_postgresql_is_unavailable():
    engine = create_engine_from_url("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with (
        make_session_factory(engine)() as session,
        pytest.raises(StorageUnavailableError, match="retry later"),
    ):
        ingest(session, [_event("a")])
    engine.dispose()
