"""Attribute LLM calls to the paying customer through OpenTelemetry baggage.

``with customer("acme"):`` (or ``@customer("acme")`` on a function, sync or async) puts the customer id
in the baggage of the current context, under the configured key (``customer.id`` by default). Every
LLM call made inside — and, with baggage propagation, every call made by downstream services — gets
``customer.id`` on its span. Extra entries (e.g. ``{"customer.plan": "pro"}``) are copied to the span
only when their key is in the ``SPANLEDGER_BAGGAGE_ATTRIBUTES`` allow-list.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import baggage, context

from spanledger.instrumentation.config import DEFAULT_CUSTOMER_BAGGAGE_KEY
from spanledger.instrumentation.environment_variables import SPANLEDGER_CUSTOMER_BAGGAGE_KEY

__all__ = ["CustomerScope", "customer", "set_customer_baggage_key"]

F = TypeVar("F", bound=Callable[..., Any])

_configured_key: str | None = None


def set_customer_baggage_key(key: str | None) -> None:
    """Use ``key`` for :func:`customer` (the instrumentor calls this); ``None`` goes back to the env."""
    global _configured_key
    _configured_key = key


def _customer_key() -> str:
    return (
        _configured_key
        or os.environ.get(SPANLEDGER_CUSTOMER_BAGGAGE_KEY, "").strip()
        or (DEFAULT_CUSTOMER_BAGGAGE_KEY)
    )


class CustomerScope:
    """Context manager (sync and async) and decorator that sets the customer baggage for a block."""

    __slots__ = ("_entries", "_tokens")

    def __init__(self, entries: Mapping[str, str]) -> None:
        self._entries = dict(entries)
        self._tokens: list[object] = []

    def _attach(self) -> object:
        ctx = context.get_current()
        for key, value in self._entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        return context.attach(ctx)

    def __enter__(self) -> CustomerScope:
        self._tokens.append(self._attach())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    async def __aenter__(self) -> CustomerScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __call__(self, func: F) -> F:
        """Decorate ``func`` so each call runs inside the scope (a fresh attachment per call)."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = self._attach()
                try:
                    return await func(*args, **kwargs)
                finally:
                    context.detach(token)  # type: ignore[arg-type]

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = self._attach()
            try:
                return func(*args, **kwargs)
            finally:
                context.detach(token)  # type: ignore[arg-type]

        return wrapper  # type: ignore[return-value]


def customer(customer_id: str, attributes: Mapping[str, str] | None = None) -> CustomerScope:
    """Attribute the LLM calls in a block to ``customer_id``.

    >>> with customer("acme", {"customer.plan": "pro"}):
    ...     client.chat.completions.create(...)   # span gets customer.id = "acme"

    Raises ``ValueError`` when ``customer_id`` is empty or a value is not a string.
    """
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise ValueError("customer() needs a non-empty customer id, e.g. customer('acme')")
    entries = {_customer_key(): customer_id}
    for key, value in (attributes or {}).items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"customer() attributes must map names to strings; got {key!r}: {value!r}")
        entries.setdefault(key, value)
    return CustomerScope(entries)
