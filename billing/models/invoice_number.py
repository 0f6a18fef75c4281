"""The ``invoice_numbers`` table: the last number issued per currency (gapless numbering).

Finalizing locks the currency's row, takes ``last_number + 1`` and writes it back in the same
transaction as the invoice, so numbers are sequential with no gaps even under concurrency.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from spanledger.billing.models.base import Base

__all__ = ["InvoiceNumber"]


class InvoiceNumber(Base):
    __tablename__ = "invoice_numbers"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)
