"""Every environment variable spanledger's billing side reads, in one place.

Configuration follows OpenTelemetry's rule: an explicit argument wins, else the environment
variable, else the default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

__all__ = ["SPANLEDGER_DATABASE_URL", "SPANLEDGER_TEST_POSTGRES_URL", "positive_int_from_env"]

_log = logging.getLogger(__name__)

SPANLEDGER_DATABASE_URL = "SPANLEDGER_DATABASE_URL"
"""SQLAlchemy URL of the ledger. Default ``sqlite:///spanledger.db`` (a file in the working
directory). Use ``postgresql+psycopg://user@host/db`` when several receivers share one ledger."""

SPANLEDGER_TEST_POSTGRES_URL = "SPANLEDGER_TEST_POSTGRES_URL"
"""Tests only: a PostgreSQL URL; when set, every storage test also runs on PostgreSQL in a schema
of its own."""


def positive_int_from_env(environ: Mapping[str, str], name: str, default: int) -> int:
    """``environ[name]`` as a positive integer; a bad value is logged and ``default`` used."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        _log.warning("%s=%r is not a positive whole number; using %d", name, raw, default)
        return default
    return value
