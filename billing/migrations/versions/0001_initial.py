"""initial schema: customers, usage events, meters, ingest state

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from spanledger.billing.models.types import ExactDecimal, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_customers_external_id")),
    )
    op.create_table(
        "ingest_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ingested_events", sa.BigInteger(), nullable=False),
        sa.Column("last_ingest_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_state")),
    )
    ingest_state = sa.table(
        "ingest_state", sa.column("id", sa.Integer()), sa.column("ingested_events", sa.BigInteger())
    )
    op.bulk_insert(ingest_state, [{"id": 1, "ingested_events": 0}])
    op.create_table(
        "meters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("event_name", sa.String(length=256), nullable=False),
        sa.Column("aggregation", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=256), nullable=True),
        sa.Column("filter", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meters")),
        sa.UniqueConstraint("name", name=op.f("uq_meters_name")),
    )
    op.create_table(
        "usage_events",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=512), nullable=False),
        sa.Column("event_name", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("provider", sa.String(length=256), nullable=True),
        sa.Column("operation", sa.String(length=256), nullable=True),
        sa.Column("request_model", sa.String(length=256), nullable=True),
        sa.Column("response_model", sa.String(length=256), nullable=True),
        sa.Column("response_id", sa.String(length=256), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=True),
        sa.Column("upstream_cost", ExactDecimal(12), nullable=True),
        sa.Column("upstream_cost_currency", sa.String(length=3), nullable=True),
        sa.Column("price_source", sa.String(length=256), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_usage_events_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_usage_events_dedupe_key")),
    )
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_events_customer_occurred", ["customer_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_usage_events_occurred", ["occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_events_occurred")
        batch_op.drop_index("ix_usage_events_customer_occurred")

    op.drop_table("usage_events")
    op.drop_table("meters")
    op.drop_table("ingest_state")
    op.drop_table("customers")
