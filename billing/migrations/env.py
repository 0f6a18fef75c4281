"""Alembic environment: runs on the connection handed in by :mod:`spanledger.billing.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from spanledger.billing.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from spanledger.billing.db import create_engine_from_url

    engine = create_engine_from_url(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("spanledger migrations run online only: use `spanledger db upgrade`")
_run_online()
