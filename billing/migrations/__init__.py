"""Alembic migrations of the ledger schema, shipped inside the package (``spanledger db upgrade``)."""
