"""invoice line weights: each finalized usage line's split by model, provider and day; foreign-cost index

Creates ``invoice_line_weights`` and fills it for the usage lines of every invoice already finalized,
paid or voided (computed once from their events, as finalizing now does), so the margin report and
the Cost Insights view read stored splits instead of events. Adds the partial index
``ix_usage_events_foreign_cost`` (costs not in USD), which lets a margin read costs from the rollups.

Revision ID: 0903_line_weights
Revises: 0902_quantity_text
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from spanledger.billing.models.types import ExactDecimal

revision: str = "0903_line_weights"
down_revision: str | None = "0902_quantity_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_COST = "upstream_cost_currency <> 'USD'"


def upgrade() -> None:
    op.create_table(
        "invoice_line_weights",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("provider", sa.String(length=256), nullable=True),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("weight", ExactDecimal(12, sqlite_storage="text"), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["invoice_lines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoice_line_weights_line_id", "invoice_line_weights", ["line_id"])
    op.create_index(
        "ix_usage_events_foreign_cost",
        "usage_events",
        ["occurred_at"],
        postgresql_where=sa.text(_FOREIGN_COST),
        sqlite_where=sa.text(_FOREIGN_COST),
    )
    _backfill()


def _backfill() -> None:
    # The application's own computation (as 0901 backfills rollups with rebuild_rollups).
    from sqlalchemy.orm import Session

    from spanledger.billing.line_weights import store_line_weights

    bind = op.get_bind()
    invoice_ids = bind.execute(
        sa.text("SELECT id FROM invoices WHERE status <> 'draft' ORDER BY id")
    ).scalars().all()
    if not invoice_ids:
        return
    session = Session(bind=bind)
    store_line_weights(session, list(invoice_ids), daily=False)  # usage_rollups_daily comes with 0905
    session.flush()


def downgrade() -> None:
    op.drop_index("ix_usage_events_foreign_cost", table_name="usage_events")
    op.drop_index("ix_invoice_line_weights_line_id", table_name="invoice_line_weights")
    op.drop_table("invoice_line_weights")
