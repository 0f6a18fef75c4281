"""billing core: plans, subscriptions, credits, price overrides, invoices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from spanledger.billing.models.types import ExactDecimal, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_packs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_packs")),
        sa.UniqueConstraint("code", name=op.f("uq_credit_packs_code")),
    )
    op.create_table(
        "invoice_numbers",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_invoice_numbers")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_plans_code")),
    )
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("input_per_million", ExactDecimal(12), nullable=False),
        sa.Column("output_per_million", ExactDecimal(12), nullable=False),
        sa.Column("cache_read_per_million", ExactDecimal(12), nullable=True),
        sa.Column("cache_write_per_million", ExactDecimal(12), nullable=True),
        sa.Column("reasoning_per_million", ExactDecimal(12), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_overrides")),
        sa.UniqueConstraint("provider", "model", "valid_from", name=op.f("uq_price_overrides_provider")),
    )
    op.create_table(
        "credit_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("meter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", ExactDecimal(12), nullable=False),
        sa.Column("credits", ExactDecimal(12), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=True),
        sa.Column("event_sequence", sa.BigInteger(), nullable=True),
        sa.Column("pack_code", sa.String(length=128), nullable=True),
        sa.Column("pack_price", ExactDecimal(12), nullable=True),
        sa.Column("pack_currency", sa.String(length=3), nullable=True),
        sa.Column("idempotency_key", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_credit_entries_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_credit_entries_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_credit_entries_idempotency_key")),
    )
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_credit_entries_account", ["customer_id", "meter_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_credit_entries_event_sequence"), ["event_sequence"], unique=False
        )

    op.create_table(
        "credit_meters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("meter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("units_per_credit", ExactDecimal(12), nullable=False),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_credit_meters_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_meters")),
        sa.UniqueConstraint("meter_id", name=op.f("uq_credit_meters_meter_id")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("anchor", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subscription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("number_sequence", sa.BigInteger(), nullable=True),
        sa.Column("subtotal", ExactDecimal(12), nullable=False),
        sa.Column("total", ExactDecimal(12), nullable=False),
        sa.Column("upstream_cost", ExactDecimal(12), nullable=True),
        sa.Column("margin", ExactDecimal(12), nullable=True),
        sa.Column("unknown_cost_events", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finalized_at", UTCDateTime(), nullable=True),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("voided_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"], name=op.f("fk_invoices_subscription_id_subscriptions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("currency", "number_sequence", name=op.f("uq_invoices_currency")),
        sa.UniqueConstraint("customer_id", "period", name=op.f("uq_invoices_customer_id")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
    )
    op.create_table(
        "subscription_phases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subscription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_subscription_phases_plan_id_plans")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_phases_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_phases")),
    )
    with op.batch_alter_table("subscription_phases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_phases_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("quantity", ExactDecimal(12), nullable=False),
        sa.Column("unit_amount", ExactDecimal(12), nullable=True),
        sa.Column("exact_amount", sa.String(length=80), nullable=False),
        sa.Column("amount", ExactDecimal(12), nullable=False),
        sa.Column("upstream_cost", ExactDecimal(12), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("meter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("meter_snapshot", sa.JSON(), nullable=True),
        sa.Column("price_snapshot", sa.JSON(), nullable=True),
        sa.Column("window_start", UTCDateTime(), nullable=True),
        sa.Column("window_end", UTCDateTime(), nullable=True),
        sa.Column("after_sequence", sa.BigInteger(), nullable=True),
        sa.Column("max_sequence", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_invoice_lines_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_lines_invoice_id"), ["invoice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_invoice_id"))

    op.drop_table("invoice_lines")
    with op.batch_alter_table("subscription_phases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_phases_subscription_id"))

    op.drop_table("subscription_phases")
    op.drop_table("invoices")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_customer_id"))

    op.drop_table("subscriptions")
    op.drop_table("credit_meters")
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entries_event_sequence"))
        batch_op.drop_index("ix_credit_entries_account")

    op.drop_table("credit_entries")
    op.drop_table("price_overrides")
    op.drop_table("plans")
    op.drop_table("invoice_numbers")
    op.drop_table("credit_packs")
