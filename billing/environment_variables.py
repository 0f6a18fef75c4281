"""Every environment variable spanledger's billing side reads, in one place.

Configuration follows OpenTelemetry's rule: an explicit argument wins, else the environment
variable, else the default.
"""

from __future__ import annotations

__all__ = ["SPANLEDGER_DATABASE_URL", "SPANLEDGER_TEST_POSTGRES_URL"]

SPANLEDGER_DATABASE_URL = "SPANLEDGER_DATABASE_URL"
"""SQLAlchemy URL of the ledger. Default ``sqlite:///spanledger.db`` (a file in the working
directory). Use ``postgresql+psycopg://user@host/db`` when several receivers share one ledger."""

SPANLEDGER_TEST_POSTGRES_URL = "SPANLEDGER_TEST_POSTGRES_URL"
"""Tests only: a PostgreSQL URL; when set, every storage test also runs on PostgreSQL in a schema
of its own."""
