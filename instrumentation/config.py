"""The instrumentation's settings: constructor argument, else environment variable, else default."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spanledger.instrumentation import environment_variables as env

__all__ = ["DEFAULT_CUSTOMER_BAGGAGE_KEY", "InstrumentationConfig"]

_logger = logging.getLogger(__name__)

DEFAULT_CUSTOMER_BAGGAGE_KEY = "customer.id"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class InstrumentationConfig:
    """Resolved settings. Build with :meth:`resolve`; see ``environment_variables`` for each meaning."""

    customer_baggage_key: str = DEFAULT_CUSTOMER_BAGGAGE_KEY
    baggage_attributes: tuple[str, ...] = ()
    openai_stream_usage: bool = True
    provider_hosts: Mapping[str, str] | None = None
    default_provider: str | None = None

    @classmethod
    def resolve(
        cls,
        *,
        customer_baggage_key: str | None = None,
        baggage_attributes: Iterable[str] | None = None,
        openai_stream_usage: bool | None = None,
        provider_hosts: Mapping[str, str] | None = None,
        default_provider: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> InstrumentationConfig:
        """Combine arguments (which win) with the environment; raise ``ValueError`` on a bad argument."""
        environ = os.environ if environ is None else environ
        if customer_baggage_key is not None and not customer_baggage_key.strip():
            raise ValueError("customer_baggage_key is empty; pass a baggage key such as 'customer.id'")
        if provider_hosts is not None:
            for host, provider in provider_hosts.items():
                if not host or not provider:
                    raise ValueError(
                        f"provider_hosts entry {host!r}={provider!r} needs a host and a provider"
                    )
        key = customer_baggage_key or environ.get(env.SPANLEDGER_CUSTOMER_BAGGAGE_KEY, "").strip()
        if baggage_attributes is None:
            extra = _split_list(environ.get(env.SPANLEDGER_BAGGAGE_ATTRIBUTES, ""))
        else:
            extra = tuple(baggage_attributes)
        if openai_stream_usage is None:
            openai_stream_usage = _parse_bool(environ.get(env.SPANLEDGER_OPENAI_STREAM_USAGE), True)
        hosts = dict(_parse_hosts(environ.get(env.SPANLEDGER_PROVIDER_HOSTS, "")))
        hosts.update(provider_hosts or {})
        default = default_provider or environ.get(env.SPANLEDGER_DEFAULT_PROVIDER, "").strip() or None
        return cls(
            customer_baggage_key=key or DEFAULT_CUSTOMER_BAGGAGE_KEY,
            baggage_attributes=extra,
            openai_stream_usage=openai_stream_usage,
            provider_hosts={host.lower(): provider for host, provider in hosts.items()},
            default_provider=default,
        )


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _parse_bool(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    _logger.warning("%s=%r is not true/false; using %s", env.SPANLEDGER_OPENAI_STREAM_USAGE, value, default)
    return default


def _parse_hosts(value: str) -> Iterable[tuple[str, str]]:
    for item in _split_list(value):
        host, sep, provider = item.partition("=")
        if not sep or not host.strip() or not provider.strip():
            _logger.warning("%s: ignoring %r (expected host=provider)", env.SPANLEDGER_PROVIDER_HOSTS, item)
            continue
        yield host.strip(), provider.strip()
