"""The environment variables the portal reads (documented in docs/portal.md)."""

from __future__ import annotations

__all__ = ["SPANLEDGER_ADMIN_TOKEN", "SPANLEDGER_PORTAL_BASE_URL", "SPANLEDGER_SECRET_KEY"]

SPANLEDGER_SECRET_KEY = "SPANLEDGER_SECRET_KEY"
"""The key portal links are signed with (HMAC-SHA256). Required by ``spanledger portal-link`` and by
the customer pages of ``spanledger serve``; changing it invalidates every link handed out."""

SPANLEDGER_ADMIN_TOKEN = "SPANLEDGER_ADMIN_TOKEN"
"""The admin token: ``Authorization: Bearer <token>`` on ``/admin``, or visit
``/admin/login?token=<token>`` once to get a signed session cookie. Unset: the admin view is off."""

SPANLEDGER_PORTAL_BASE_URL = "SPANLEDGER_PORTAL_BASE_URL"
"""Default ``--base-url`` of ``spanledger portal-link`` (default ``http://127.0.0.1:4318``)."""
