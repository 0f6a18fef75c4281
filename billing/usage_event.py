"""The usage event: the contract between the exporter (spans) and billing (money).

One immutable record per billable LLM call. It is plain data: the exporter builds it from a span,
``spanledger events import`` builds it from a JSON line, and :func:`spanledger.billing.ingest.ingest`
stores it. Token counts follow the OpenTelemetry GenAI conventions *after* normalisation:

- ``input_tokens`` is the total input, cached tokens included;
- ``cache_read_input_tokens`` / ``cache_write_input_tokens`` are parts of ``input_tokens``;
- ``output_tokens`` includes ``reasoning_tokens``.

A count that the source did not report is ``None`` (stored as NULL), never 0.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from spanledger.billing.errors import InvalidEventError

__all__ = [
    "COLUMN_FIELDS",
    "DEFAULT_EVENT_NAME",
    "MAX_DEDUPE_KEY_LENGTH",
    "MAX_TEXT_LENGTH",
    "STORED_ONLY_FIELDS",
    "TOKEN_FIELDS",
    "UNATTRIBUTED_CUSTOMER",
    "UsageEvent",
    "event_from_json",
    "event_to_json",
    "parse_timestamp",
    "validate_event",
]

DEFAULT_EVENT_NAME = "gen_ai.call"

#: Events whose span named no customer are stored under this reserved external id, never dropped.
#: The name cannot be created as a regular customer (it contains characters customer ids may not).
UNATTRIBUTED_CUSTOMER = "(unattributed)"

TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)

MAX_DEDUPE_KEY_LENGTH = 512
MAX_TEXT_LENGTH = 256
# A single LLM call above ten billion tokens is a bug in the producer, not usage.
MAX_TOKENS = 10_000_000_000

#: Stored in columns of these lengths (OpenTelemetry ids in lowercase hex).
_ID_FIELDS = {"trace_id": 32, "span_id": 16}

_TEXT_FIELDS = (
    "event_name",
    "customer_external_id",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One billable LLM call, normalised. See the module docstring for the token rules."""

    dedupe_key: str
    occurred_at: datetime
    customer_external_id: str | None = None
    event_name: str = DEFAULT_EVENT_NAME
    provider: str | None = None
    operation: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    trace_id: str | None = None
    span_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str | None:
        """The model that served the call: the response model, else the requested one."""
        return self.response_model or self.request_model

    @property
    def total_tokens(self) -> int | None:
        """Input plus output, or ``None`` when neither was reported."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def validate_event(event: UsageEvent) -> None:
    """Raise :class:`InvalidEventError` with the first reason ``event`` breaks the contract."""
    if not _plainly_valid(event):
        _check_every_rule(event)


# Every field, in one C-level read (a dozen getattr calls cost more than the checks themselves).
_ALL_FIELDS = attrgetter(
    "dedupe_key",
    "occurred_at",
    "event_name",
    "customer_external_id",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "trace_id",
    "span_id",
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "metadata",
)


def _plainly_valid(event: UsageEvent) -> bool:
    """Whether ``event`` is an ordinary valid event, checked in one pass: true only when
    :func:`_check_every_rule` would accept it; false for any event out of the ordinary (a type other than
    the exact expected one, non-ASCII text, metadata that is not flat), valid or not, which then goes
    through :func:`_check_every_rule` for the verdict and the reason.

    Almost every event is ordinary (the mapping builds them with exactly these types), and a verdict on all
    fields at once costs a fraction of the rule-by-rule checks that name the first broken rule.
    """
    if type(event) is not UsageEvent:
        return False
    (
        key,
        occurred_at,
        name,
        customer,
        provider,
        operation,
        request_model,
        response_model,
        response_id,
        trace_id,
        span_id,
        input_tokens,
        cache_read,
        cache_write,
        output_tokens,
        reasoning,
        metadata,
    ) = _ALL_FIELDS(event)
    if not (
        type(key) is str
        and len(key) <= MAX_DEDUPE_KEY_LENGTH
        and type(name) is str
        and name
        and len(name) <= MAX_TEXT_LENGTH
        and type(occurred_at) is datetime
        and occurred_at.tzinfo is UTC
        and (customer is None or (type(customer) is str and len(customer) <= MAX_TEXT_LENGTH))
        and (provider is None or (type(provider) is str and len(provider) <= MAX_TEXT_LENGTH))
        and (operation is None or (type(operation) is str and len(operation) <= MAX_TEXT_LENGTH))
        and (request_model is None or (type(request_model) is str and len(request_model) <= MAX_TEXT_LENGTH))
        and (
            response_model is None or (type(response_model) is str and len(response_model) <= MAX_TEXT_LENGTH)
        )
        and (response_id is None or (type(response_id) is str and len(response_id) <= MAX_TEXT_LENGTH))
        and (trace_id is None or (type(trace_id) is str and len(trace_id) <= _ID_FIELDS["trace_id"]))
        and (span_id is None or (type(span_id) is str and len(span_id) <= _ID_FIELDS["span_id"]))
    ):
        return False
    # Every text is a str or None, so one string holds all their characters ("None" adds only ASCII letters):
    # ASCII without NUL means nothing in them that a database cannot store.
    text = f"{key}{name}{customer}{provider}{operation}{request_model}{response_model}{response_id}" + (
        f"{trace_id}{span_id}"
    )
    if not text.isascii() or "\x00" in text or not key.strip():
        return False
    if customer is not None and not customer.strip():
        return False
    if not (
        (input_tokens is None or (type(input_tokens) is int and 0 <= input_tokens <= MAX_TOKENS))
        and (cache_read is None or (type(cache_read) is int and 0 <= cache_read <= MAX_TOKENS))
        and (cache_write is None or (type(cache_write) is int and 0 <= cache_write <= MAX_TOKENS))
        and (output_tokens is None or (type(output_tokens) is int and 0 <= output_tokens <= MAX_TOKENS))
        and (reasoning is None or (type(reasoning) is int and 0 <= reasoning <= MAX_TOKENS))
    ):
        return False
    if input_tokens is not None and (cache_read or 0) + (cache_write or 0) > input_tokens:
        return False  # also covers either cache count alone exceeding the input
    if reasoning is not None and output_tokens is not None and reasoning > output_tokens:
        return False
    return type(metadata) is dict and _plain_ascii(metadata)


def _check_every_rule(event: UsageEvent) -> None:
    """The contract rule by rule, in a fixed order: the first rule broken is the reason raised."""
    if not isinstance(event, UsageEvent):
        raise InvalidEventError(f"expected a UsageEvent, got {type(event).__name__}")
    if not isinstance(event.dedupe_key, str) or not event.dedupe_key.strip():
        raise InvalidEventError("dedupe_key is empty; every event needs a unique dedupe key")
    if len(event.dedupe_key) > MAX_DEDUPE_KEY_LENGTH:
        raise InvalidEventError(f"dedupe_key is longer than {MAX_DEDUPE_KEY_LENGTH} characters")
    _require_storable_text("dedupe_key", event.dedupe_key)
    if not isinstance(event.occurred_at, datetime):
        raise InvalidEventError("occurred_at must be a datetime")
    if event.occurred_at.tzinfo is None or event.occurred_at.utcoffset() is None:
        raise InvalidEventError("occurred_at has no timezone; give it in UTC (e.g. 2026-11-01T12:00:00Z)")
    for name in _TEXT_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidEventError(f"{name} must be a string, not {type(value).__name__}")
        if len(value) > MAX_TEXT_LENGTH:
            raise InvalidEventError(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
        if "\x00" in value or not value.isascii():
            _require_storable_text(name, value)
    for name, length in _ID_FIELDS.items():
        value = getattr(event, name)
        if value is not None and (not isinstance(value, str) or len(value) > length):
            raise InvalidEventError(f"{name} must be a string of at most {length} hex digits, not {value!r}")
        if value is not None:
            _require_storable_text(name, value)
    if not event.event_name:
        raise InvalidEventError("event_name is empty")
    if event.customer_external_id is not None and not event.customer_external_id.strip():
        raise InvalidEventError("customer_external_id is blank; leave it out for unattributed usage")
    for name in TOKEN_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidEventError(f"{name} must be a whole number, not {value!r}")
        if value < 0:
            raise InvalidEventError(f"{name} is negative ({value})")
        if value > MAX_TOKENS:
            raise InvalidEventError(f"{name} is absurdly large ({value} > {MAX_TOKENS})")
    _require_part_of("cache_read_input_tokens", "input_tokens", event)
    _require_part_of("cache_write_input_tokens", "input_tokens", event)
    _require_part_of("reasoning_tokens", "output_tokens", event)
    if (
        event.input_tokens is not None
        and (event.cache_read_input_tokens or 0) + (event.cache_write_input_tokens or 0) > event.input_tokens
    ):
        raise InvalidEventError("cache read plus cache write tokens exceed input_tokens, which includes them")
    if not isinstance(event.metadata, Mapping):
        raise InvalidEventError("metadata must be a JSON object")
    _require_storable_metadata(event.metadata)


def _require_storable_text(name: str, value: str) -> None:
    # Neither database stores NUL in text, and an unpaired surrogate (which a JSON escape like \ud800 can
    # produce) is not UTF-8: either would fail the whole batch's insert instead of this one event.
    if "\x00" in value:
        raise InvalidEventError(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidEventError(f"{name} is not valid UTF-8 (it contains an unpaired surrogate)") from exc


_FLAT_SCALARS = (int, float, bool, type(None))


def _require_storable_metadata(metadata: Mapping[str, Any]) -> None:
    """Every text in ``metadata`` (keys and values, at any depth) must be storable; see above."""
    if type(metadata) is dict and _plain_ascii(metadata):
        return  # the usual document: flat, ASCII (nothing that could be an unpaired surrogate)
    pending: list[object] = [metadata]
    while pending:
        node = pending.pop()
        if isinstance(node, str):
            if not node.isascii():
                try:
                    node.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise InvalidEventError(
                        "metadata is not valid UTF-8 (it contains an unpaired surrogate)"
                    ) from exc
        elif isinstance(node, Mapping):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)


def _plain_ascii(metadata: dict[Any, Any]) -> bool:
    """Whether ``metadata`` is flat with ASCII text keys and ASCII text or scalar values."""
    for key, value in metadata.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return False
        elif kind not in _FLAT_SCALARS:
            return False
    return True


def _require_part_of(part: str, whole: str, event: UsageEvent) -> None:
    part_value, whole_value = getattr(event, part), getattr(event, whole)
    if part_value is not None and whole_value is not None and part_value > whole_value:
        raise InvalidEventError(f"{part} ({part_value}) exceeds {whole} ({whole_value}), which includes it")


def parse_timestamp(value: object, field_name: str = "timestamp") -> datetime:
    """Parse an ISO 8601 timestamp with a timezone (``Z`` allowed) into an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise InvalidEventError(f"{field_name} {value!r} is not an ISO 8601 timestamp") from exc
    else:
        raise InvalidEventError(f"{field_name} must be an ISO 8601 string, not {type(value).__name__}")
    if parsed.tzinfo is None:
        raise InvalidEventError(f"{field_name} {value!r} has no timezone; add Z for UTC")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before the first UTC instant
        raise InvalidEventError(f"{field_name} {value!r} is out of range") from exc


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(UsageEvent))
#: Fields stored in ``usage_events`` columns of the same name (the customer is stored as a foreign key
#: and the metadata in the ``metadata`` JSON column).
COLUMN_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(UsageEvent) if f.name not in ("customer_external_id", "metadata")
)
#: Fields that ``spanledger events list --json`` adds from storage; reading them back ignores them.
STORED_ONLY_FIELDS = frozenset(
    {"sequence", "received_at", "upstream_cost", "upstream_cost_currency", "price_source"}
)


def event_from_json(data: object) -> UsageEvent:
    """Build and validate an event from a decoded JSON object (one line of an events file)."""
    if not isinstance(data, dict):
        raise InvalidEventError("an event must be a JSON object")
    unknown = sorted(set(data) - _FIELD_NAMES - STORED_ONLY_FIELDS)
    if unknown:
        raise InvalidEventError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name in ("dedupe_key", "occurred_at") if data.get(name) is None]
    if missing:
        raise InvalidEventError(f"missing required field(s) {', '.join(missing)}")
    values = {k: v for k, v in data.items() if k not in STORED_ONLY_FIELDS}
    values["occurred_at"] = parse_timestamp(values["occurred_at"], "occurred_at")
    values["metadata"] = values.get("metadata") or {}
    event = UsageEvent(**values)
    validate_event(event)
    return event


def event_to_json(event: UsageEvent) -> dict[str, Any]:
    """The JSON form of ``event`` that :func:`event_from_json` reads back unchanged."""
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(UsageEvent)}
    data["occurred_at"] = event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    data["metadata"] = json.loads(json.dumps(dict(event.metadata), default=str))
    return data
