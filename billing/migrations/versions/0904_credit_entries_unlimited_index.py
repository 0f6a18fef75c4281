"""credit entries: partial index of the unlimited grants per account

``ix_credit_entries_unlimited`` on ``credit_entries (customer_id, meter_id) WHERE unlimited``: ingest
reads every batch's unlimited grants in one query through it, instead of scanning each account's
entries (a cost that grew with the ledger). Only unlimited grants are in it, so consumption entries
(nearly every row) cost it nothing to write.

Revision ID: 0904_credit_unlimited
Revises: 0903_line_weights
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0904_credit_unlimited"
down_revision: str | None = "0903_line_weights"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Word for word spanledger.billing.models.credit_entry.UNLIMITED_CONDITION (a migration does not
# follow later changes of the models).
_UNLIMITED = "unlimited"


def upgrade() -> None:
    op.create_index(
        "ix_credit_entries_unlimited",
        "credit_entries",
        ["customer_id", "meter_id"],
        postgresql_where=sa.text(_UNLIMITED),
        sqlite_where=sa.text(_UNLIMITED),
    )


def downgrade() -> None:
    op.drop_index("ix_credit_entries_unlimited", table_name="credit_entries")
