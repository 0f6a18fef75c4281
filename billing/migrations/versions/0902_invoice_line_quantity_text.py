"""invoice_lines.quantity stored as exact decimal text on SQLite (no 9.2M-unit bound)

On SQLite the column held the quantity as a 64-bit integer scaled by 10**12, which overflowed for a
customer-month above about 9.2 million tokens. It becomes TEXT holding the exact decimal; existing
values are converted. PostgreSQL keeps NUMERIC(38, 12) and needs no change.

Revision ID: 0902_quantity_text
Revises: 0901_usage_rollups
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0902_quantity_text"
down_revision: str | None = "0901_usage_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUANTUM = Decimal(1).scaleb(-12)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table("invoice_lines") as batch_op:
        batch_op.alter_column(
            "quantity", existing_type=sa.BigInteger(), type_=sa.String(64), existing_nullable=False
        )
    rows = bind.execute(sa.text("SELECT id, quantity FROM invoice_lines")).all()
    for line_id, scaled in rows:
        exact = Decimal(int(scaled)).scaleb(-12).quantize(_QUANTUM)
        bind.execute(
            sa.text("UPDATE invoice_lines SET quantity = :q WHERE id = :id"), {"q": str(exact), "id": line_id}
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    rows = bind.execute(sa.text("SELECT id, quantity FROM invoice_lines")).all()
    for line_id, text in rows:
        bind.execute(
            sa.text("UPDATE invoice_lines SET quantity = :q WHERE id = :id"),
            {"q": int(Decimal(text).scaleb(12)), "id": line_id},
        )
    with op.batch_alter_table("invoice_lines") as batch_op:
        batch_op.alter_column(
            "quantity", existing_type=sa.String(64), type_=sa.BigInteger(), existing_nullable=False
        )
