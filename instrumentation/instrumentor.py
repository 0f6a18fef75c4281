"""``SpanledgerInstrumentor``: the OpenTelemetry instrumentor that turns LLM HTTP calls into GenAI spans.

Loaded by ``opentelemetry-instrument`` through the ``opentelemetry_instrumentor`` entry point named
``spanledger`` (so ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=spanledger`` turns it off), or used directly::

    SpanledgerInstrumentor().instrument(tracer_provider=provider)

It patches ``Client.send`` and ``AsyncClient.send`` of whichever of httpx and httpx2 is installed, and
``uninstrument()`` restores them. The per-client form records only the calls of one client::

    SpanledgerInstrumentor.instrument_client(http_client, tracer_provider=provider)
    SpanledgerInstrumentor.uninstrument_client(http_client)

A call is recorded once even when both forms apply to it (the outermost wrapper records it).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection, Iterable, Mapping
from types import ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, wrap_function_wrapper

from spanledger.instrumentation.config import InstrumentationConfig
from spanledger.instrumentation.customer import set_customer_baggage_key
from spanledger.instrumentation.package import _instruments, _instruments_any
from spanledger.instrumentation.transport import make_send_wrappers
from spanledger.instrumentation.version import __version__

__all__ = ["HTTP_LIBRARIES", "SpanledgerInstrumentor"]

_logger = logging.getLogger("spanledger.instrumentation")

#: The HTTP client libraries patched when installed.
HTTP_LIBRARIES: tuple[str, ...] = ("httpx", "httpx2")


class SpanledgerInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records each LLM call made through httpx or httpx2 as one GenAI CLIENT span.

    ``instrument()`` keyword arguments (each overrides its environment variable, see
    ``spanledger.instrumentation.environment_variables``):

    - ``tracer_provider``: the provider to use (default: the global one);
    - ``customer_baggage_key``: baggage key of the paying customer (default ``customer.id``);
    - ``baggage_attributes``: further baggage keys copied to the span;
    - ``openai_stream_usage``: ask OpenAI-format chat streams for usage (default ``True``);
    - ``provider_hosts``: ``{"host" or "host:port": provider name}`` for hosts not built in;
    - ``default_provider``: provider name for unknown hosts.
    """

    _patched: list[ModuleType]

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        # Either library is enough: a conflict only when neither is installed at a supported version.
        return get_dependency_conflicts(_instruments, _instruments_any)

    def _instrument(self, **kwargs: Any) -> None:
        config = _config_from(kwargs)
        tracer = _tracer(kwargs.get("tracer_provider"))
        set_customer_baggage_key(config.customer_baggage_key)
        self._patched = []
        for name in HTTP_LIBRARIES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            wrappers = make_send_wrappers(module, tracer, config)
            wrap_function_wrapper(module, "Client.send", wrappers.sync_send)
            wrap_function_wrapper(module, "AsyncClient.send", wrappers.async_send)
            self._patched.append(module)

    def _uninstrument(self, **kwargs: Any) -> None:
        for module in getattr(self, "_patched", []):
            unwrap(module.Client, "send")
            unwrap(module.AsyncClient, "send")
        self._patched = []
        set_customer_baggage_key(None)

    @staticmethod
    def instrument_client(
        client: Any, tracer_provider: trace.TracerProvider | None = None, **options: Any
    ) -> None:
        """Record the LLM calls made through one httpx or httpx2 ``Client`` / ``AsyncClient``.

        ``options`` are those of ``instrument()`` (``customer_baggage_key``, ``baggage_attributes``,
        ``openai_stream_usage``, ``provider_hosts``, ``default_provider``), each overriding its
        environment variable. Other clients stay untouched. Hand the client to an SDK, e.g.
        ``OpenAI(http_client=client)`` (openai and anthropic take an ``httpx2`` client).

        A client instrumented already is left as it is (a warning is logged). Raises ``ValueError``
        for an object that is not an httpx or httpx2 client.
        """
        module, is_async = _client_library(client)
        if isinstance(vars(client).get("send"), FunctionWrapper):
            _logger.warning("spanledger: this %s is instrumented already", type(client).__name__)
            return
        config = _config_from(options)
        if options.get("customer_baggage_key") is not None:
            set_customer_baggage_key(config.customer_baggage_key)
        wrappers = make_send_wrappers(module, _tracer(tracer_provider), config)
        wrap_function_wrapper(client, "send", wrappers.async_send if is_async else wrappers.sync_send)

    @staticmethod
    def uninstrument_client(client: Any) -> None:
        """Undo :meth:`instrument_client` for ``client`` (nothing happens if it was not instrumented)."""
        if isinstance(vars(client).get("send"), FunctionWrapper):
            del client.send  # the class's method shows through again


def _client_library(client: object) -> tuple[ModuleType, bool]:
    """(httpx or httpx2 module, whether the client is async) for ``client``; ``ValueError`` otherwise."""
    name = type(client).__module__.partition(".")[0]
    if name in HTTP_LIBRARIES:
        module = importlib.import_module(name)
        if isinstance(client, module.AsyncClient):
            return module, True
        if isinstance(client, module.Client):
            return module, False
    raise ValueError(
        f"instrument_client() takes an httpx or httpx2 Client or AsyncClient, not {type(client).__name__}"
    )


def _config_from(options: Mapping[str, Any]) -> InstrumentationConfig:
    return InstrumentationConfig.resolve(
        customer_baggage_key=options.get("customer_baggage_key"),
        baggage_attributes=_optional_iterable(options.get("baggage_attributes")),
        openai_stream_usage=options.get("openai_stream_usage"),
        provider_hosts=_optional_mapping(options.get("provider_hosts")),
        default_provider=options.get("default_provider"),
    )


def _tracer(tracer_provider: trace.TracerProvider | None) -> trace.Tracer:
    return trace.get_tracer(
        "spanledger.instrumentation",
        __version__,
        tracer_provider=tracer_provider,
        schema_url="https://opentelemetry.io/schemas/1.37.0",
    )


def _optional_iterable(value: object) -> Iterable[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError("baggage_attributes must be a list of baggage keys, not a single string")
    return list(value)  # type: ignore[call-overload]


def _optional_mapping(value: object) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("provider_hosts must be a mapping of host (or host:port) to provider name")
    return value
