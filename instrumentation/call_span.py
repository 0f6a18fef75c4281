"""One LLM call as one CLIENT span: started when the request is recognised, ended exactly once.

Modelled on opentelemetry-util-genai's invocation (start / stop / fail): the span carries the GenAI
attributes known from the request at start, the response facts at the end, the customer from baggage,
and ``error.type`` when the call failed. Nothing here raises into the app.
"""

from __future__ import annotations

import threading

from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanledger.instrumentation import attributes as attr
from spanledger.instrumentation.config import InstrumentationConfig
from spanledger.instrumentation.facts import CallSpec, ResponseFacts
from spanledger.instrumentation.failures import log_failure_once

__all__ = ["GenAICall", "error_type_of"]


def error_type_of(exc: BaseException) -> str:
    """``error.type`` for an exception: its class name, as opentelemetry-instrumentation-httpx records it."""
    return type(exc).__qualname__


class GenAICall:
    """The span of one LLM call. :meth:`end` is idempotent and safe from any thread (GC included)."""

    __slots__ = ("_ended", "_lock", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self._ended = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, tracer: trace.Tracer, spec: CallSpec, config: InstrumentationConfig) -> GenAICall:
        """Start the span in the current context, with the request attributes and the customer."""
        attributes: dict[str, str | int | bool] = {
            attr.GEN_AI_OPERATION_NAME: spec.operation,
            attr.GEN_AI_PROVIDER_NAME: spec.provider,
        }
        if spec.request_model:
            attributes[attr.GEN_AI_REQUEST_MODEL] = spec.request_model
        if spec.server_address:
            attributes[attr.SERVER_ADDRESS] = spec.server_address
        if spec.server_port is not None:
            attributes[attr.SERVER_PORT] = spec.server_port
        if spec.streaming:
            attributes[attr.SPANLEDGER_STREAM] = True
        current = context.get_current()
        customer = baggage.get_baggage(config.customer_baggage_key, current)
        if isinstance(customer, str) and customer:
            attributes[attr.CUSTOMER_ID] = customer
        for key in config.baggage_attributes:
            value = baggage.get_baggage(key, current)
            if isinstance(value, str) and value and key not in attributes:
                attributes[key] = value
        name = f"{spec.operation} {spec.request_model}" if spec.request_model else spec.operation
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        return cls(span)

    def end(
        self,
        facts: ResponseFacts | None,
        *,
        error_type: str | None = None,
        usage_expected: bool = True,
    ) -> None:
        """Record the response facts (or the failure) and end the span; later calls do nothing.

        ``usage_expected`` is true when the provider answered successfully: a missing usage block is
        then flagged with ``spanledger.usage.missing`` so billing knows the count is unknown, not zero.
        """
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            _record(self.span, facts, error_type, usage_expected)
        except Exception as exc:
            log_failure_once("recording the response", exc)
        finally:
            self.span.end()


def _record(
    span: trace.Span, facts: ResponseFacts | None, error_type: str | None, usage_expected: bool
) -> None:
    # One set_attributes call: the SDK takes its span lock once, not once per attribute.
    attributes: dict[str, str | int | bool | list[str]] = {}
    usage = facts.usage if facts is not None else None
    if facts is not None:
        if facts.response_id:
            attributes[attr.GEN_AI_RESPONSE_ID] = facts.response_id
        if facts.response_model:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = facts.response_model
        if facts.finish_reasons:
            attributes[attr.GEN_AI_RESPONSE_FINISH_REASONS] = list(facts.finish_reasons)
    if usage is not None:
        for name, value in (
            (attr.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens),
            (attr.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens),
            (attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_input_tokens),
            (attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation_input_tokens),
            (attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_output_tokens),
        ):
            if value is not None:
                attributes[name] = value
    elif usage_expected:
        attributes[attr.SPANLEDGER_USAGE_MISSING] = True
    if error_type is not None:
        attributes[attr.ERROR_TYPE] = error_type
    if attributes:
        span.set_attributes(attributes)
    if error_type is not None:
        span.set_status(Status(StatusCode.ERROR))
