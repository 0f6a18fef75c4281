from datetime import UTC, datetime, timedelta, timezone

import pytest

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.usage_event import (
    UsageEvent,
    event_from_json,
    event_to_json,
    parse_timestamp,
    validate_event,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make(**overrides) -> UsageEvent:
    values = dict(dedupe_key="k1", occurred_at=T0, input_tokens=100, output_tokens=20)
    values.update(overrides)
    return UsageEvent(**values)


def test_a_complete_event_is_valid_and_round_trips_through_json():
    event = make(
        customer_external_id="acme",
        provider="openai",
        operation="chat",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        response_id="chatcmpl-1",
        cache_read_input_tokens=40,
        cache_write_input_tokens=10,
        reasoning_tokens=5,
        trace_id="a" * 32,
        span_id="b" * 16,
        metadata={"service.name": "app"},
    )
    validate_event(event)
    assert event_from_json(event_to_json(event)) == event
    assert event.model == "gpt-4o-2024-08-06"
    assert event.total_tokens == 120


def test_missing_counts_stay_none():
    event = event_from_json({"dedupe_key": "k", "occurred_at": "2026-11-01T00:00:00Z"})
    assert event.input_tokens is None and event.output_tokens is None and event.total_tokens is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"dedupe_key": " "}, "dedupe_key is empty"),
        ({"dedupe_key": "x" * 513}, "longer than 512"),
        ({"occurred_at": datetime(2026, 11, 1)}, "no timezone"),
        ({"input_tokens": -1}, "input_tokens is negative"),
        ({"output_tokens": 1.5}, "whole number"),
        ({"output_tokens": True}, "whole number"),
        ({"input_tokens": 10**12}, "absurdly large"),
        ({"cache_read_input_tokens": 101}, "exceeds input_tokens"),
        ({"reasoning_tokens": 21}, "exceeds output_tokens"),
        ({"cache_read_input_tokens": 60, "cache_write_input_tokens": 60}, "cache read plus cache write"),
        ({"provider": 3}, "provider must be a string"),
        ({"request_model": "m\x00"}, "NUL"),
        ({"customer_external_id": "  "}, "blank"),
        ({"event_name": ""}, "event_name is empty"),
    ],
)
def test_contract_violations_are_rejected_with_a_reason(overrides, reason):
    with pytest.raises(InvalidEventError, match=reason):
        validate_event(make(**overrides))


def test_json_errors_name_the_problem():
    with pytest.raises(InvalidEventError, match="unknown field"):
        event_from_json({"dedupe_key": "k", "occurred_at": "2026-11-01T00:00:00Z", "tokens": 3})
    with pytest.raises(InvalidEventError, match="missing required field"):
        event_from_json({"dedupe_key": "k"})
    with pytest.raises(InvalidEventError, match="JSON object"):
        event_from_json([1, 2])
    with pytest.raises(InvalidEventError, match="not an ISO 8601"):
        event_from_json({"dedupe_key": "k", "occurred_at": "yesterday"})


def test_timestamps_are_normalised_to_utc():
    parsed = parse_timestamp("2026-11-01T14:00:00+02:00")
    assert parsed == T0 and parsed.tzinfo == UTC
    assert parse_timestamp(T0.astimezone(timezone(timedelta(hours=-5)))) == T0
    with pytest.raises(InvalidEventError, match="no timezone"):
        parse_timestamp("2026-11-01T12:00:00")
