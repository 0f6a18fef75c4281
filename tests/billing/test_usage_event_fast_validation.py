"""validate_event's one-pass verdict for ordinary events agrees with the rule-by-rule check on every event.

``_plainly_valid`` may only say yes when every rule holds; whenever it says no, the rule-by-rule check gives
the verdict and the reason. Events are drawn around every boundary the rules draw: lengths at and past the
limits, NUL, non-ASCII and unpaired surrogates, counts at 0, MAX_TOKENS and past it, booleans and floats for
counts, cache and reasoning parts around their wholes, naive and non-UTC times, odd metadata.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.usage_event import (
    MAX_DEDUPE_KEY_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TOKENS,
    UsageEvent,
    _check_every_rule,
    _plainly_valid,
    validate_event,
)

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

_odd_text = st.sampled_from(
    ["", " ", "\t\n", "a\x00b", "\x00", "é", "日本", "\ud800", "a\udfff", "\x7f", "\x1b["]
)


def _texts(limit: int) -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.text(alphabet="abcXYZ-_:. 0189", max_size=12),
        st.text(max_size=8),
        _odd_text,
        st.sampled_from(["a" * limit, "a" * (limit + 1), "é" * limit, " " * limit]),
        st.sampled_from([3, 1.5, b"bytes", True]),
    )


_counts = st.one_of(
    st.none(),
    st.integers(0, 50),
    st.sampled_from([0, -1, MAX_TOKENS, MAX_TOKENS + 1, -(2**70), 2**70, True, False, 1.0, 2.5, "3"]),
)
_times = st.one_of(
    st.just(T0),
    st.sampled_from(
        [
            datetime(2026, 11, 1),
            T0.astimezone(timezone(timedelta(hours=2))),
            T0.astimezone(timezone(timedelta(0), "Z0")),  # UTC, but not the UTC object
            datetime.max.replace(tzinfo=UTC),
            "2026-11-01T00:00:00Z",
            None,
        ]
    ),
)
_metadata_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    _odd_text,
    st.lists(st.one_of(st.text(max_size=4), _odd_text), max_size=3),
    st.tuples(_odd_text),
    st.dictionaries(st.one_of(st.text(max_size=4), _odd_text), _odd_text, max_size=2),
)
_metadata = st.one_of(
    st.dictionaries(st.one_of(st.text(max_size=8), _odd_text), _metadata_values, max_size=5),
    st.dictionaries(st.integers(), st.text(max_size=3), max_size=2),
    st.sampled_from([None, [], "not a mapping", (("k", "v"),)]),
)


@st.composite
def events(draw: st.DrawFn) -> UsageEvent:
    input_tokens = draw(_counts)
    output_tokens = draw(_counts)
    return UsageEvent(
        dedupe_key=draw(st.one_of(_texts(MAX_DEDUPE_KEY_LENGTH), st.just("response:openai:chatcmpl-1"))),
        occurred_at=draw(_times),
        customer_external_id=draw(_texts(MAX_TEXT_LENGTH)),
        event_name=draw(st.one_of(st.just("gen_ai.call"), _texts(MAX_TEXT_LENGTH))),
        provider=draw(_texts(MAX_TEXT_LENGTH)),
        operation=draw(_texts(MAX_TEXT_LENGTH)),
        request_model=draw(_texts(MAX_TEXT_LENGTH)),
        response_model=draw(_texts(MAX_TEXT_LENGTH)),
        response_id=draw(_texts(MAX_TEXT_LENGTH)),
        input_tokens=input_tokens,
        # Parts near their whole, so both sides of "exceeds" come up.
        cache_read_input_tokens=draw(st.one_of(_counts, st.just(input_tokens))),
        cache_write_input_tokens=draw(_counts),
        output_tokens=output_tokens,
        reasoning_tokens=draw(st.one_of(_counts, st.just(output_tokens))),
        trace_id=draw(st.one_of(_texts(32), st.just("a" * 32), st.just("0" * 33))),
        span_id=draw(st.one_of(_texts(16), st.just("b" * 16), st.just("0" * 17))),
        metadata=draw(_metadata),
    )


@st.composite
def near_ordinary_events(draw: st.DrawFn) -> UsageEvent:
    """An ordinary valid event with zero to three fields taken from a wild one: mostly one rule from valid."""
    wild = draw(events())
    names = draw(st.lists(st.sampled_from([f.name for f in dataclasses.fields(UsageEvent)]), max_size=3))
    return dataclasses.replace(_ordinary(), **{name: getattr(wild, name) for name in names})


def _verdict(check, event: UsageEvent) -> str | None:
    try:
        check(event)
    except InvalidEventError as exc:
        return exc.reason
    return None


@FUZZ
@given(st.one_of(events(), near_ordinary_events()))
def test_validate_event_gives_the_rule_by_rule_verdict_and_reason(event):
    assert _verdict(validate_event, event) == _verdict(_check_every_rule, event)
    if _plainly_valid(event):
        assert _verdict(_check_every_rule, event) is None


def _ordinary(**changes) -> UsageEvent:
    event = UsageEvent(
        dedupe_key="response:openai:chatcmpl-1",
        occurred_at=T0,
        customer_external_id="acme",
        provider="openai",
        operation="chat",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        response_id="chatcmpl-1",
        input_tokens=100,
        cache_read_input_tokens=40,
        cache_write_input_tokens=10,
        output_tokens=20,
        reasoning_tokens=5,
        trace_id="a" * 32,
        span_id="b" * 16,
        metadata={"service.name": "app", "otel.scope.version": 1, "x": None, "y": 1.5, "z": True},
    )
    return dataclasses.replace(event, **changes)


def test_an_ordinary_event_takes_the_one_pass_check():
    assert _plainly_valid(_ordinary())
    assert _plainly_valid(
        _ordinary(input_tokens=MAX_TOKENS, cache_read_input_tokens=0, output_tokens=0, reasoning_tokens=0)
    )
    validate_event(_ordinary())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"dedupe_key": "x" * (MAX_DEDUPE_KEY_LENGTH + 1)}, "dedupe_key is longer than 512 characters"),
        ({"dedupe_key": " \t"}, "dedupe_key is empty; every event needs a unique dedupe key"),
        ({"dedupe_key": "k\x00"}, "dedupe_key contains a NUL character"),
        ({"provider": "p" * (MAX_TEXT_LENGTH + 1)}, "provider is longer than 256 characters"),
        ({"response_id": "r\udc80"}, "response_id is not valid UTF-8 (it contains an unpaired surrogate)"),
        ({"customer_external_id": " "}, "customer_external_id is blank; leave it out for unattributed usage"),
        ({"trace_id": "a" * 33}, f"trace_id must be a string of at most 32 hex digits, not {'a' * 33!r}"),
        (
            {"input_tokens": 10, "cache_read_input_tokens": 6, "cache_write_input_tokens": 5},
            "cache read plus cache write tokens exceed input_tokens, which includes them",
        ),
        ({"reasoning_tokens": 21}, "reasoning_tokens (21) exceeds output_tokens (20), which includes it"),
        (
            {"output_tokens": MAX_TOKENS + 1, "reasoning_tokens": None},
            f"output_tokens is absurdly large ({MAX_TOKENS + 1} > {MAX_TOKENS})",
        ),
        ({"metadata": {"k": ["\ud800"]}}, "metadata is not valid UTF-8 (it contains an unpaired surrogate)"),
        (
            {"occurred_at": datetime(2026, 11, 1)},
            "occurred_at has no timezone; give it in UTC (e.g. 2026-11-01T12:00:00Z)",
        ),
    ],
)
def test_an_ordinary_event_broken_one_way_is_refused_with_that_reason(changes, reason):
    event = _ordinary(**changes)
    assert not _plainly_valid(event)
    with pytest.raises(InvalidEventError) as raised:
        validate_event(event)
    assert raised.value.reason == reason


@pytest.mark.parametrize(
    "changes",
    [
        {"customer_external_id": "Ünïcode"},  # valid, but not ASCII: the rule-by-rule check accepts it
        {"metadata": {"nested": {"a": 1}}},
        {"metadata": {"list": ["a"]}},
        {"occurred_at": T0.astimezone(timezone(timedelta(hours=2)))},
    ],
)
def test_valid_events_out_of_the_ordinary_are_accepted_by_the_full_check(changes):
    event = _ordinary(**changes)
    assert not _plainly_valid(event)
    validate_event(event)
