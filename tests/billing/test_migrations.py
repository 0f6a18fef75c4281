from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from spanledger.billing.db import create_engine_from_url
from spanledger.billing.migrate import current_revision, head_revision, upgrade
from spanledger.billing.models import Base, IngestState


def test_migrations_and_models_agree(database_url):
    engine = create_engine_from_url(database_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
        with engine.connect() as connection:
            assert connection.execute(select(IngestState.id)).scalar_one() == 1
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(database_url):
    engine = create_engine_from_url(database_url)
    try:
        upgrade(engine)
        assert upgrade(engine) == head_revision()
        assert "usage_events" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
