"""Span → usage event: the pure, table-driven normalisation at the heart of the exporter.

Rules, in the order they apply (``docs/exporter.md`` explains them for users):

1. **Billable or ignored.** A span whose ``gen_ai.operation.name`` wraps several calls (``invoke_agent``,
   ``execute_tool`` …) is ignored: its children carry the calls. Otherwise a span is billable when it carries
   a usage count (any row of :data:`~spanledger.exporter.dialects.ATTRIBUTE_TABLE` for a token field), or when
   its operation is a model call (``chat`` …) that did not fail: such a call is billed with unknown (``None``)
   counts so per-call meters still see it. Every other span is ignored, never stored.
2. **Fields** come from the dialect table: for each field, the first listed attribute present wins.
3. **Totals.** ``gen_ai.usage.total_tokens`` / ``llm.usage.total_tokens`` only fill a missing input or output
   count (``total − the other``), in the source's own convention, before step 4.
4. **Cached tokens are part of the input.** Anthropic's API (and Bedrock's Converse) report ``input_tokens``
   *without* cache reads and writes; the conventions, and our event, count them in. For an Anthropic-style
   provider (:data:`~spanledger.exporter.dialects.ANTHROPIC_STYLE_PROVIDERS`) the cache counts are added to
   the input when the span's instrumentation scope is known to report the raw count
   (:data:`~spanledger.exporter.dialects.BUILTIN_INPUT_EXCLUDES_CACHE_SCOPES` plus
   ``SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES``), or when the numbers prove it (cache read + write > input).
   Likewise thinking tokens are added to a Gemini-style output count when the scope is known to report
   Gemini's raw count or reasoning > output. Each adjustment is recorded in the event's metadata under
   ``spanledger.adjustments``.
5. **Customer**: span attribute ``customer.id``, else resource attribute ``customer.id``, else each key of
   ``customer_attributes`` (span, then resource). None found: the event is unattributed (``None``).
6. **Dedupe key**: ``response:<provider>:<gen_ai.response.id>`` when the span has a response id, else
   ``span:<trace id>:<span id>``. A retried export, and two instrumentations recording the same call (which
   share the provider's response id), give the same key; billing keeps one event and fills its missing
   fields from the second record (see :func:`spanledger.billing.ingest.ingest`).
7. **Time**: the span's end (when usage is known), else its start.

A billable span that cannot become a valid event (a count that is not a whole number, a customer id over the
attribute length limit, cache tokens exceeding the input …) is *rejected* with a one-sentence reason; the
receivers report rejected spans in OTLP ``partial_success``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.usage_event import (
    DEFAULT_EVENT_NAME,
    MAX_DEDUPE_KEY_LENGTH,
    MAX_TOKENS,
    UsageEvent,
    validate_event,
)
from spanledger.exporter import dialects
from spanledger.exporter.environment_variables import (
    SPANLEDGER_CUSTOMER_ATTRIBUTES,
    SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES,
)
from spanledger.exporter.spans import STATUS_ERROR, AttributeValue, SpanRecord

__all__ = [
    "CUSTOMER_ATTRIBUTE",
    "RESOURCE_METADATA_KEYS",
    "SPAN_METADATA_KEYS",
    "MappingResult",
    "MappingSettings",
    "RejectedSpan",
    "candidate_attribute_keys",
    "dedupe_key_for",
    "map_span",
    "map_spans",
    "relevant_attribute_keys",
]

_log = logging.getLogger(__name__)

# ASCII digits only, at most 20 (int64 has 19): str.isdigit() also accepts "²", which int() refuses.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,20}")

CUSTOMER_ATTRIBUTE = "customer.id"

#: Resource attributes copied into the event's metadata (who produced the call).
RESOURCE_METADATA_KEYS: tuple[str, ...] = (
    "service.name",
    "service.namespace",
    "service.version",
    "deployment.environment.name",
    "deployment.environment",
)
#: Span attributes copied into the event's metadata.
SPAN_METADATA_KEYS: tuple[str, ...] = ("server.address", "gen_ai.conversation.id")

_TEXT_FIELDS = ("provider", "operation", "request_model", "response_model", "response_id")
_COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_tokens",
    "total_tokens",
)
_FIELD_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    name: dialects.attributes_for(name) for name in (*_TEXT_FIELDS, *_COUNT_FIELDS)
}
_USAGE_ATTRIBUTES = frozenset(key for name in dialects.USAGE_FIELDS for key in _FIELD_ATTRIBUTES[name])
# The table's rows per field, looked up once here rather than per span.
_PROVIDER, _OPERATION, _REQUEST_MODEL, _RESPONSE_MODEL, _RESPONSE_ID = (
    _FIELD_ATTRIBUTES[name] for name in _TEXT_FIELDS
)
_COUNT_ATTRIBUTES = tuple((name, _FIELD_ATTRIBUTES[name]) for name in _COUNT_FIELDS)
_CUSTOMER_KEYS = (CUSTOMER_ATTRIBUTE,)


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """What the mapping may be told; the defaults follow the conventions."""

    #: Keys tried after ``customer.id`` (span, then resource), e.g. ``("enduser.id", "tenant.id")``.
    customer_attributes: tuple[str, ...] = ()
    input_excludes_cache_scopes: frozenset[str] = dialects.BUILTIN_INPUT_EXCLUDES_CACHE_SCOPES
    output_excludes_reasoning_scopes: frozenset[str] = dialects.BUILTIN_OUTPUT_EXCLUDES_REASONING_SCOPES

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> MappingSettings:
        """Settings from ``SPANLEDGER_CUSTOMER_ATTRIBUTES`` and ``SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES``."""
        env = os.environ if environ is None else environ
        extra_scopes = _split_list(env.get(SPANLEDGER_INPUT_EXCLUDES_CACHE_SCOPES, ""))
        return cls(
            customer_attributes=_split_list(env.get(SPANLEDGER_CUSTOMER_ATTRIBUTES, "")),
            input_excludes_cache_scopes=dialects.BUILTIN_INPUT_EXCLUDES_CACHE_SCOPES
            | frozenset(extra_scopes),
        )


@dataclass(frozen=True, slots=True)
class RejectedSpan:
    """A billable span that could not become an event, with the reason in one sentence."""

    index: int
    trace_id: str
    span_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MappingResult:
    """The events of a batch of spans; ``span_indexes[i]`` is the span ``events[i]`` came from."""

    events: tuple[UsageEvent, ...] = ()
    span_indexes: tuple[int, ...] = ()
    ignored: int = 0
    rejected: tuple[RejectedSpan, ...] = field(default_factory=tuple)


@lru_cache(maxsize=32)
def relevant_attribute_keys(settings: MappingSettings) -> tuple[frozenset[str], frozenset[str]]:
    """The span and resource attribute keys the mapping reads; decoders may skip every other attribute."""
    customer_keys = (CUSTOMER_ATTRIBUTE, *settings.customer_attributes)
    span_keys = frozenset(rule.attribute for rule in dialects.ATTRIBUTE_TABLE)
    span_keys |= frozenset(customer_keys) | frozenset(SPAN_METADATA_KEYS)
    resource_keys = frozenset(customer_keys) | frozenset(RESOURCE_METADATA_KEYS)
    return span_keys, resource_keys


def candidate_attribute_keys() -> frozenset[str]:
    """Span attribute keys without which a span is never billable (rule 1): the usage counts and the
    operation. :func:`map_span` ignores a span carrying none of them, so decoders may skip it unread."""
    return _USAGE_ATTRIBUTES | frozenset(_FIELD_ATTRIBUTES["operation"])


def dedupe_key_for(provider: str | None, response_id: str | None, trace_id: str, span_id: str) -> str:
    """The key that makes one call one event, however often and by whomever it is recorded."""
    if response_id:
        key = f"response:{provider or ''}:{response_id}"
        if len(key) > MAX_DEDUPE_KEY_LENGTH:
            # Keep the key stable and within the column: hash the part that overflows.
            digest = hashlib.sha256(response_id.encode()).hexdigest()
            key = f"response:{provider or ''}:sha256:{digest}"
        return key
    return f"span:{trace_id}:{span_id}"


def map_span(span: SpanRecord, settings: MappingSettings | None = None) -> UsageEvent | None:
    """The usage event of ``span``, or ``None`` when it is not billable.

    Raises :class:`InvalidEventError` (with ``reason``) when the span is billable but cannot be an event.
    """
    settings = settings or _DEFAULT_SETTINGS
    if not span.oversized_attributes:
        event = _map_ordinary(span, settings)
        if event is not _UNSURE:
            return event
    return _map_any(span, settings)


def _map_any(span: SpanRecord, settings: MappingSettings) -> UsageEvent | None:
    """:func:`map_span` for every span, rule by rule (the reference :func:`_map_ordinary` is tested
    against)."""
    attributes = span.attributes
    oversized = span.oversized_attributes
    operation = _text(attributes, oversized, _OPERATION)
    if operation is not None:
        operation = operation.strip().lower() or None
    if operation in dialects.AGGREGATE_OPERATIONS:
        return None
    # A usage count set aside as over the length limit still makes the span billable, so it is rejected
    # with that reason instead of silently ignored.
    has_usage = not _USAGE_ATTRIBUTES.isdisjoint(attributes) or (
        bool(oversized) and not _USAGE_ATTRIBUTES.isdisjoint(oversized)
    )
    if not has_usage and (
        operation not in dialects.MODEL_CALL_OPERATIONS or span.status_code == STATUS_ERROR
    ):
        return None

    provider = _text(attributes, oversized, _PROVIDER)
    provider = (provider.strip().lower() or None) if provider is not None else None
    counts = _counts(attributes, oversized)
    adjustments = _normalise_counts(counts, provider, span, settings)
    response_id = _text(attributes, oversized, _RESPONSE_ID)
    if response_id is None and not _valid_ids(span):
        raise InvalidEventError("span has no response id and no valid trace id and span id to identify it")
    event = UsageEvent(
        dedupe_key=dedupe_key_for(provider, response_id, span.trace_id, span.span_id),
        occurred_at=_occurred_at(span),
        customer_external_id=_customer(span, settings),
        provider=provider,
        operation=operation,
        request_model=_text(attributes, oversized, _REQUEST_MODEL),
        response_model=_text(attributes, oversized, _RESPONSE_MODEL),
        response_id=response_id,
        input_tokens=counts["input_tokens"],
        cache_read_input_tokens=counts["cache_read_input_tokens"],
        cache_write_input_tokens=counts["cache_write_input_tokens"],
        output_tokens=counts["output_tokens"],
        reasoning_tokens=counts["reasoning_tokens"],
        trace_id=span.trace_id,
        span_id=span.span_id,
        metadata=_metadata(span, adjustments),
    )
    validate_event(event)
    return event


def map_spans(spans: Iterable[SpanRecord], settings: MappingSettings | None = None) -> MappingResult:
    """Map a batch: billable spans become events, bad ones are rejected with a reason, the rest ignored."""
    settings = settings or _DEFAULT_SETTINGS
    events: list[UsageEvent] = []
    indexes: list[int] = []
    rejected: list[RejectedSpan] = []
    ignored = 0
    for index, span in enumerate(spans):
        try:
            event = map_span(span, settings)
        except InvalidEventError as exc:
            rejected.append(RejectedSpan(index, span.trace_id, span.span_id, exc.reason))
            continue
        if event is None:
            ignored += 1
        else:
            events.append(event)
            indexes.append(index)
    return MappingResult(tuple(events), tuple(indexes), ignored, tuple(rejected))


_DEFAULT_SETTINGS = MappingSettings()


def _valid_ids(span: SpanRecord) -> bool:
    return (
        len(span.trace_id) == 32
        and len(span.span_id) == 16
        and span.trace_id.strip("0") != ""
        and span.span_id.strip("0") != ""
    )


# What _map_ordinary returns for a span it leaves to _map_any.
_UNSURE: Any = object()


class _Plan(NamedTuple):
    """For one set of span attribute keys: the key each field is read from (``None``: absent), as the
    dialect table's first-present-wins rule picks it."""

    operation: str | None
    provider: str | None
    counts: tuple[tuple[str, str | None], ...]
    response_id: str | None
    request_model: str | None
    response_model: str | None
    has_usage: bool


# Spans of one instrumentation carry the same keys in the same order, so a few plans serve every span.
# Emptied when full (simpler than LRU; an unusual key set only costs a plan).
_PLANS: dict[tuple[str, ...], _Plan] = {}
_MAX_PLANS = 1024


def _plan(keys: tuple[str, ...]) -> _Plan:
    present = frozenset(keys)

    def first(candidates: tuple[str, ...]) -> str | None:
        return next((key for key in candidates if key in present), None)

    plan = _Plan(
        operation=first(_OPERATION),
        provider=first(_PROVIDER),
        counts=tuple((name, first(candidates)) for name, candidates in _COUNT_ATTRIBUTES),
        response_id=first(_RESPONSE_ID),
        request_model=first(_REQUEST_MODEL),
        response_model=first(_RESPONSE_MODEL),
        has_usage=not _USAGE_ATTRIBUTES.isdisjoint(present),
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[keys] = plan
    return plan


def _map_ordinary(span: SpanRecord, settings: MappingSettings) -> UsageEvent | None:
    """:func:`_map_any` for a span without oversized attributes whose fields hold the types they should
    (text attributes strings, counts ints): each field read straight from the key its :class:`_Plan`
    names. Returns :data:`_UNSURE` as soon as anything is out of the ordinary (a value of another type, a
    ``None`` value); every check and reason after that point is :func:`_map_any`'s own, in its order."""
    attributes = span.attributes
    keys = tuple(attributes)
    plan = _PLANS.get(keys) or _plan(keys)
    get = attributes.get
    operation = None
    if plan.operation is not None:
        operation = get(plan.operation)
        if type(operation) is not str:
            return _UNSURE
        operation = operation.strip().lower() or None
        if operation in dialects.AGGREGATE_OPERATIONS:
            return None
    if not plan.has_usage and (
        operation not in dialects.MODEL_CALL_OPERATIONS or span.status_code == STATUS_ERROR
    ):
        return None
    provider = None
    if plan.provider is not None:
        provider = get(plan.provider)
        if type(provider) is not str:
            return _UNSURE
        provider = provider.strip().lower() or None
    counts: dict[str, int | None] = {}
    for name, key in plan.counts:
        if key is None:
            counts[name] = None
        else:
            value = get(key)
            if type(value) is not int:
                return _UNSURE
            counts[name] = value
    texts = []
    for key in (plan.response_id, plan.request_model, plan.response_model):
        if key is None:
            texts.append(None)
        else:
            value = get(key)
            if type(value) is not str:
                return _UNSURE
            texts.append(value or None)
    response_id, request_model, response_model = texts
    adjustments = _normalise_counts(counts, provider, span, settings)
    if response_id is None and not _valid_ids(span):
        raise InvalidEventError("span has no response id and no valid trace id and span id to identify it")
    # Positional, in _EVENT_FIELDS order: matching sixteen keywords costs more than building the event.
    event = UsageEvent(
        dedupe_key_for(provider, response_id, span.trace_id, span.span_id),
        _occurred_at(span),
        _customer(span, settings),
        DEFAULT_EVENT_NAME,
        provider,
        operation,
        request_model,
        response_model,
        response_id,
        counts["input_tokens"],
        counts["cache_read_input_tokens"],
        counts["cache_write_input_tokens"],
        counts["output_tokens"],
        counts["reasoning_tokens"],
        span.trace_id,
        span.span_id,
        _metadata(span, adjustments),
    )
    validate_event(event)
    return event


_EVENT_FIELDS = (
    "dedupe_key",
    "occurred_at",
    "customer_external_id",
    "event_name",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "trace_id",
    "span_id",
    "metadata",
)
if tuple(f.name for f in dataclasses.fields(UsageEvent)) != _EVENT_FIELDS:  # pragma: no cover - a guard
    raise ImportError("UsageEvent's fields changed order: update _map_ordinary's positional event")


# _text and _counts read a field as the dialect table says: the first of ``keys`` present wins; an attribute
# set aside as oversized, met before one that is present, rejects the span. (Loops of their own rather than a
# shared helper: they run a dozen times per billable span.)


def _text(
    attributes: Mapping[str, AttributeValue], oversized: frozenset[str], keys: tuple[str, ...]
) -> str | None:
    for key in keys:
        if oversized and key in oversized:
            raise InvalidEventError(f"span attribute {key} is longer than the attribute length limit")
        value = attributes.get(key)
        if value is not None:
            break
    else:
        return None
    if type(value) is str:
        return value or None
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return str(value)
    raise InvalidEventError(f"span attribute {key} must be a string, not {type(value).__name__}")


def _counts(attributes: Mapping[str, AttributeValue], oversized: frozenset[str]) -> dict[str, int | None]:
    """Every count field, in table order (so the first unreadable one is the one reported)."""
    counts: dict[str, int | None] = {}
    for name, keys in _COUNT_ATTRIBUTES:
        value = None
        for key in keys:
            if oversized and key in oversized:
                raise InvalidEventError(f"span attribute {key} is longer than the attribute length limit")
            value = attributes.get(key)
            if value is not None:
                break
        counts[name] = value if value is None or type(value) is int else _whole_number(key, value)
    return counts


def _whole_number(key: str, value: AttributeValue) -> int:
    if isinstance(value, bool):
        raise InvalidEventError(f"span attribute {key} must be a whole number, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    raise InvalidEventError(f"span attribute {key} must be a whole number, not {value!r}")


def _normalise_counts(
    counts: dict[str, int | None], provider: str | None, span: SpanRecord, settings: MappingSettings
) -> list[str]:
    """Apply rules 3 and 4 of the module docstring in place; return the names of the adjustments made."""
    adjustments: list[str] = []
    total = counts.pop("total_tokens")
    if total is not None and total < 0:
        raise InvalidEventError(f"total_tokens is negative ({total})")
    if total is not None and total > MAX_TOKENS:
        raise InvalidEventError(f"total_tokens is absurdly large ({total} > {MAX_TOKENS})")
    if total is not None:
        if counts["input_tokens"] is None and counts["output_tokens"] is not None:
            counts["input_tokens"] = max(total - counts["output_tokens"], 0)
            adjustments.append("input_tokens_from_total")
        elif counts["output_tokens"] is None and counts["input_tokens"] is not None:
            counts["output_tokens"] = max(total - counts["input_tokens"], 0)
            adjustments.append("output_tokens_from_total")
        elif counts["input_tokens"] is None and counts["output_tokens"] is None:
            # Only a total: we cannot split it, and pricing input as output (or back) would be a guess.
            adjustments.append("total_tokens_only")
    cached = (counts["cache_read_input_tokens"] or 0) + (counts["cache_write_input_tokens"] or 0)
    input_tokens = counts["input_tokens"]
    anthropic_style = provider in dialects.ANTHROPIC_STYLE_PROVIDERS
    if cached and input_tokens is not None and anthropic_style:  # noqa: SIM102 - one rule, two conditions
        if span.scope_name in settings.input_excludes_cache_scopes or cached > input_tokens:
            counts["input_tokens"] = input_tokens + cached
            adjustments.append("input_tokens_plus_cache")
    reasoning = counts["reasoning_tokens"]
    output_tokens = counts["output_tokens"]
    gemini_style = provider in dialects.GEMINI_STYLE_PROVIDERS
    if reasoning and output_tokens is not None and gemini_style:  # noqa: SIM102 - one rule, two conditions
        if span.scope_name in settings.output_excludes_reasoning_scopes or reasoning > output_tokens:
            counts["output_tokens"] = output_tokens + reasoning
            adjustments.append("output_tokens_plus_reasoning")
    return adjustments


def _customer(span: SpanRecord, settings: MappingSettings) -> str | None:
    keys = (
        (CUSTOMER_ATTRIBUTE, *settings.customer_attributes)
        if settings.customer_attributes
        else _CUSTOMER_KEYS
    )
    for key in keys:
        if key in span.oversized_attributes:
            raise InvalidEventError(f"span attribute {key} is longer than the attribute length limit")
        text = _customer_text(span.attributes.get(key))
        if text:
            return text
        if key in span.oversized_resource_attributes:
            raise InvalidEventError(f"resource attribute {key} is longer than the attribute length limit")
        text = _customer_text(span.resource_attributes.get(key))
        if text:
            return text
    return None


def _customer_text(value: AttributeValue | None) -> str | None:
    """A customer id: a non-blank string or a whole number, stripped (booleans and the rest are no id)."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip()


# datetime + timedelta is exact integer arithmetic, and cheaper than fromtimestamp(...).replace(...).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _occurred_at(span: SpanRecord) -> datetime:
    nanos = span.end_time_unix_nano or span.start_time_unix_nano
    if nanos <= 0:
        raise InvalidEventError("span has neither an end nor a start time")
    try:
        return _EPOCH + timedelta(0, 0, nanos // 1000)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidEventError(f"span time {nanos} ns is out of range") from exc


_NUMBERS = (int, float)
_SCALARS = (str, int, float, bool)
#: The resource part of the metadata of the last resource seen: the spans of one request share one
#: resource mapping, so it is read once per request, not once per span. One tuple, replaced whole,
#: so concurrent receiver threads never see a half-updated pair.
_last_resource_metadata: tuple[Mapping[str, AttributeValue], dict[str, Any]] = ({}, {})


def _resource_metadata(resource_attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    global _last_resource_metadata
    cached_for, cached = _last_resource_metadata
    if cached_for is resource_attributes:
        return cached
    metadata: dict[str, Any] = {}
    for key in RESOURCE_METADATA_KEYS:
        value = resource_attributes.get(key)
        if isinstance(value, _SCALARS):
            metadata[key] = value
    _last_resource_metadata = (resource_attributes, metadata)
    return metadata


def _metadata(span: SpanRecord, adjustments: list[str]) -> dict[str, Any]:
    metadata = dict(_resource_metadata(span.resource_attributes))
    for key in SPAN_METADATA_KEYS:
        value = span.attributes.get(key)
        if isinstance(value, _SCALARS):
            metadata[key] = value
    if span.scope_name:
        metadata["otel.scope.name"] = span.scope_name
    if span.scope_version:
        metadata["otel.scope.version"] = span.scope_version
    metadata["span.name"] = span.name
    if adjustments:
        metadata["spanledger.adjustments"] = adjustments
    return metadata
