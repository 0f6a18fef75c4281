"""usage rollups: events summed per customer, UTC hour and dimensions; backfilled from the ledger

Revision ID: 0901_usage_rollups
Revises: 0900_stripe
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from spanledger.billing.models.types import ExactDecimal, UTCDateTime

revision: str = "0901_usage_rollups"
down_revision: str | None = "0900_stripe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("event_name", sa.String(length=256), nullable=False),
        sa.Column("provider", sa.String(length=256), nullable=True),
        sa.Column("operation", sa.String(length=256), nullable=True),
        sa.Column("request_model", sa.String(length=256), nullable=True),
        sa.Column("response_model", sa.String(length=256), nullable=True),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("unknown_cost_events", sa.BigInteger(), nullable=False),
        sa.Column("max_sequence", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("input_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("input_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_input_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_input_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_input_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_input_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_input_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_input_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_input_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_input_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("total_tokens_sum", sa.BigInteger(), nullable=True),
        sa.Column("total_tokens_count", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens_min", sa.BigInteger(), nullable=True),
        sa.Column("total_tokens_max", sa.BigInteger(), nullable=True),
        sa.Column("upstream_cost_sum", ExactDecimal(12), nullable=True),
        sa.Column("upstream_cost_count", sa.BigInteger(), nullable=False),
        sa.Column("upstream_cost_min", ExactDecimal(12), nullable=True),
        sa.Column("upstream_cost_max", ExactDecimal(12), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_usage_rollups_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_rollups")),
    )
    op.create_index("ix_usage_rollups_customer_hour", "usage_rollups", ["customer_id", "hour"])
    op.create_index("ix_usage_rollups_hour", "usage_rollups", ["hour"])
    # An existing ledger gets its rollups now: from here on, meters and invoices read them.
    from spanledger.billing.rollups.maintenance import rebuild_rollups

    rebuild_rollups(op.get_bind(), days=False)  # usage_rollups_daily comes with 0905


def downgrade() -> None:
    op.drop_index("ix_usage_rollups_hour", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_customer_hour", table_name="usage_rollups")
    op.drop_table("usage_rollups")
