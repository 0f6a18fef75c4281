"""Portal URLs: what ``spanledger portal-link`` prints."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from spanledger.billing.portal.tokens import sign_portal_token

__all__ = ["portal_url"]


def portal_url(base_url: str, key: bytes, customer: str, expires_at: datetime) -> str:
    """``<base>/portal?customer=…&token=…`` granting ``customer``'s page until ``expires_at``."""
    query = urlencode({"customer": customer, "token": sign_portal_token(key, customer, expires_at)})
    return f"{base_url.rstrip('/')}/portal?{query}"
