"""Optional token authentication shared by both receivers.

With no tokens configured every request is accepted. With tokens, a request must carry one of them as
``authorization: Bearer <token>`` (HTTP header or gRPC metadata) or ``x-api-key: <token>``; otherwise it
is refused before its body is read and nothing is stored. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping

from spanledger.exporter.environment_variables import SPANLEDGER_AUTH_TOKENS
from spanledger.exporter.errors import AuthenticationError

__all__ = ["TokenAuthenticator"]


class TokenAuthenticator:
    """Checks a request's credentials against a configured token list."""

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens = tuple(token.encode() for token in (t.strip() for t in tokens) if token)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> TokenAuthenticator:
        env = os.environ if environ is None else environ
        return cls(env.get(SPANLEDGER_AUTH_TOKENS, "").split(","))

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, authorization: str | None, api_key: str | None = None) -> None:
        """Raise :class:`AuthenticationError` unless a configured token is presented."""
        if not self._tokens:
            return
        candidates = []
        if authorization:
            scheme, _, credentials = authorization.strip().partition(" ")
            candidates.append(credentials.strip() if scheme.lower() == "bearer" else authorization.strip())
        if api_key:
            candidates.append(api_key.strip())
        if not candidates:
            raise AuthenticationError("missing credentials: send `authorization: Bearer <token>`")
        for candidate in candidates:
            presented = candidate.encode()
            # Compare against every token so timing does not reveal which one nearly matched.
            if any([hmac.compare_digest(presented, token) for token in self._tokens]):
                return
        raise AuthenticationError("invalid token")
