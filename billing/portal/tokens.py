"""Signed, expiring portal links (pure): ``base64url(payload) "." base64url(HMAC-SHA256)``.

The payload names the customer and the expiry (Unix seconds). Verification is constant-time and
answers every failure — bad shape, bad signature, expired, another customer's link — with the same
:class:`PortalAccessDenied`, so a response can never tell an attacker which check failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spanledger.billing.errors import ConfigurationError, SpanledgerError

__all__ = [
    "PortalAccessDenied",
    "PortalGrant",
    "parse_duration",
    "require_secret_key",
    "sign_portal_token",
    "verify_portal_token",
]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MIN_KEY_BYTES = 16


class PortalAccessDenied(SpanledgerError):
    """A portal token that is malformed, tampered with, expired or for another customer."""

    def __init__(self) -> None:
        super().__init__("this link is not valid; ask your provider for a new one")


@dataclass(frozen=True, slots=True)
class PortalGrant:
    """What a valid token grants: one customer's pages until ``expires_at``."""

    customer: str
    expires_at: datetime


def require_secret_key(key: str | None) -> bytes:
    """The signing key as bytes; a missing or short key is a :class:`ConfigurationError`."""
    if not key or not key.strip():
        raise ConfigurationError(
            "SPANLEDGER_SECRET_KEY is not set; set it to a long random string "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    encoded = key.strip().encode()
    if len(encoded) < _MIN_KEY_BYTES:
        raise ConfigurationError(f"SPANLEDGER_SECRET_KEY must be at least {_MIN_KEY_BYTES} characters long")
    return encoded


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w`` → a positive :class:`timedelta`."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise ConfigurationError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, b"spanledger-portal:" + payload.encode(), hashlib.sha256).digest()


def sign_portal_token(key: bytes, customer: str, expires_at: datetime) -> str:
    """A token granting ``customer``'s pages until ``expires_at`` (timezone-aware)."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = _b64(
        json.dumps({"c": customer, "e": int(expires_at.timestamp())}, separators=(",", ":")).encode()
    )
    return f"{payload}.{_b64(_mac(key, payload))}"


def verify_portal_token(key: bytes, token: str | None, customer: str, now: datetime) -> PortalGrant:
    """The grant of ``token`` for ``customer`` at ``now``, else :class:`PortalAccessDenied`."""
    if not token or token.count(".") != 1:
        raise PortalAccessDenied()
    payload, signature = token.split(".")
    try:
        given = _unb64(signature)
        data = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise PortalAccessDenied() from None
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise PortalAccessDenied()
    if not isinstance(data, dict) or not isinstance(data.get("c"), str) or not isinstance(data.get("e"), int):
        raise PortalAccessDenied()
    expires_at = datetime.fromtimestamp(data["e"], UTC)
    # Compare the customer in constant time too: a mismatch must look like any other failure.
    if not hmac.compare_digest(data["c"].encode(), customer.encode()) or now >= expires_at:
        raise PortalAccessDenied()
    return PortalGrant(data["c"], expires_at)
