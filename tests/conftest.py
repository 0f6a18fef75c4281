"""Shared fixtures: an isolated ledger database per test, on SQLite and (when configured) PostgreSQL.

Every test that takes ``database_url``, ``engine`` or ``session`` runs once on SQLite and once on
PostgreSQL when ``SPANLEDGER_TEST_POSTGRES_URL`` is set. On PostgreSQL each test gets a schema of
its own, selected through the connection's ``search_path`` in the URL, so even subprocesses (the
CLI, receivers) that are handed the URL stay inside the test's schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.environment_variables import SPANLEDGER_TEST_POSTGRES_URL
from spanledger.billing.models import Base

POSTGRES_URL = os.environ.get(SPANLEDGER_TEST_POSTGRES_URL)
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def _admin_engine() -> Engine:
    assert POSTGRES_URL is not None
    return create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | None]:
    """An engine on the test PostgreSQL database, or None; fails loudly if set but unreachable."""
    if not POSTGRES_URL:
        yield None
        return
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        pytest.exit(
            f"{SPANLEDGER_TEST_POSTGRES_URL} is set but PostgreSQL is unreachable: {exc}", returncode=3
        )
    yield engine
    engine.dispose()


def postgres_schema_url(schema: str) -> str:
    """The test PostgreSQL URL with ``search_path`` set to ``schema``."""
    assert POSTGRES_URL is not None
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def _postgres_schema(admin: Engine) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path, postgres_admin: Engine | None) -> Iterator[str]:
    """The URL of an empty, isolated database (no tables yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    assert postgres_admin is not None
    with _postgres_schema(postgres_admin) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin: Engine | None) -> Iterator[str]:
    """An empty PostgreSQL schema's URL, for tests that need PostgreSQL specifically."""
    if postgres_admin is None:
        pytest.skip(f"{SPANLEDGER_TEST_POSTGRES_URL} is not set (CI sets it)")
    with _postgres_schema(postgres_admin) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an isolated database with every table created."""
    engine = create_engine_from_url(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def backend(engine: Engine) -> str:
    """``sqlite`` or ``postgresql``: the database the current test runs on."""
    return engine.dialect.name
