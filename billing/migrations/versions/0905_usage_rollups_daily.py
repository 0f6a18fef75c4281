"""usage rollups by day: the hourly rollups summed per customer, UTC day and dimensions; backfilled

``usage_rollups_daily`` keeps event counts and per measured field the sum and non-NULL count (no
minimum or maximum, so new events are added and anything else recomputes a customer-day from its
hourly cells). Reports over many days (admin Cost Insights, the margin report) read it instead of up
to 24 hourly cells per day.

Revision ID: 0905_usage_rollups_daily
Revises: 0904_credit_unlimited
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from spanledger.billing.models.types import ExactDecimal

revision: str = "0905_usage_rollups_daily"
down_revision: str | None = "0904_credit_unlimited"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def upgrade() -> None:
    measures: list[sa.Column] = []
    for name in _FIELDS:
        measures.append(sa.Column(f"{name}_sum", sa.BigInteger(), nullable=True))
        measures.append(sa.Column(f"{name}_count", sa.BigInteger(), nullable=False))
    op.create_table(
        "usage_rollups_daily",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_name", sa.String(length=256), nullable=False),
        sa.Column("provider", sa.String(length=256), nullable=True),
        sa.Column("operation", sa.String(length=256), nullable=True),
        sa.Column("request_model", sa.String(length=256), nullable=True),
        sa.Column("response_model", sa.String(length=256), nullable=True),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("unknown_cost_events", sa.BigInteger(), nullable=False),
        *measures,
        sa.Column("upstream_cost_sum", ExactDecimal(12), nullable=True),
        sa.Column("upstream_cost_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_usage_rollups_daily_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_rollups_daily")),
    )
    op.create_index("ix_usage_rollups_daily_customer_day", "usage_rollups_daily", ["customer_id", "day"])
    op.create_index("ix_usage_rollups_daily_day", "usage_rollups_daily", ["day"])
    # An existing ledger gets its daily rollups now, from its (exact) hourly rollups.
    from spanledger.billing.rollups.maintenance import rebuild_days

    rebuild_days(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_usage_rollups_daily_day", table_name="usage_rollups_daily")
    op.drop_index("ix_usage_rollups_daily_customer_day", table_name="usage_rollups_daily")
    op.drop_table("usage_rollups_daily")
