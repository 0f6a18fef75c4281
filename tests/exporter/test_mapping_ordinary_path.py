"""map_span's path for ordinary spans (fields read by a per-key-set plan) maps every span as the rule-by-rule
path does: same event, same ignored span, same rejection reason.

Spans are drawn with the table's keys (preferred and older spellings together, so first-present-wins is
exercised), customer and metadata keys, and values of every type a decoder or the SDK can produce, plus some
it cannot (``None``): strings empty, blank, long, non-ASCII, with NUL or an unpaired surrogate; counts
negative, zero, huge, as floats, strings and booleans; arrays.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.usage_event import MAX_TOKENS, validate_event
from spanledger.exporter import dialects
from spanledger.exporter.mapping import (
    _UNSURE,
    RESOURCE_METADATA_KEYS,
    SPAN_METADATA_KEYS,
    MappingSettings,
    _map_any,
    _map_ordinary,
    map_span,
)
from spanledger.exporter.spans import SpanRecord

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TABLE_KEYS = [rule.attribute for rule in dialects.ATTRIBUTE_TABLE]
SPAN_KEYS = [*TABLE_KEYS, "customer.id", "enduser.id", *SPAN_METADATA_KEYS, "http.method", "gen_ai.prompt"]
TRACE_ID, SPAN_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
SETTINGS = [MappingSettings(), MappingSettings(customer_attributes=("enduser.id",))]

_texts = st.one_of(
    st.sampled_from(
        ["chat", "Chat ", "invoke_agent", "embeddings", "openai", "Anthropic", "gcp.gen_ai", "m-1"]
    ),
    st.sampled_from(["", " ", "a\x00b", "é", "日本", "\ud800", "x" * 257, "y" * 600, "\x1b"]),
    st.text(max_size=10),
)
_numbers = st.one_of(
    st.integers(0, 5000),
    st.sampled_from([0, -1, -(2**63), 2**63 - 1, 2**70, MAX_TOKENS, MAX_TOKENS + 1]),
    st.sampled_from([1.0, 2.5, -3.0, float("inf"), float("nan"), True, False, "12", " 7 ", "1.5", "²"]),
)
_values = st.one_of(
    _texts,
    _numbers,
    st.tuples(st.integers(0, 3), st.text(max_size=3)),
    st.just(()),
    st.none(),  # no decoder produces it; a hand-made record may
)


def _attributes(keys: list[str]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(keys), _values, max_size=10)


@st.composite
def _plain_attributes(draw: st.DrawFn) -> dict[str, object]:
    """Keys of the table with the types instrumentations send: counts ints, the rest strings."""
    attributes: dict[str, object] = {}
    for key in draw(st.lists(st.sampled_from(SPAN_KEYS), max_size=8)):
        field = next((rule.field for rule in dialects.ATTRIBUTE_TABLE if rule.attribute == key), "")
        if field in dialects.USAGE_FIELDS:
            attributes[key] = draw(st.one_of(st.integers(0, 5000), st.sampled_from([-1, MAX_TOKENS + 1])))
        else:
            attributes[key] = draw(
                st.one_of(st.sampled_from(["chat", "openai", "m", "resp-1", "c-1"]), _texts)
            )
    return attributes


@st.composite
def usage_spans(draw: st.DrawFn) -> SpanRecord:
    """Mostly spans like an instrumentation's: the usual keys with the usual types; then anything."""
    mode = draw(st.sampled_from(["wild", "usual and wild", "usual"]))
    attributes = draw(_attributes(SPAN_KEYS)) if mode != "usual" else draw(_plain_attributes())
    if mode != "wild":
        attributes.update(
            {
                "gen_ai.operation.name": draw(st.sampled_from(["chat", "embeddings", "execute_tool", ""])),
                "gen_ai.provider.name": draw(
                    st.sampled_from(["openai", "anthropic", "aws.bedrock", "gcp.gen_ai"])
                ),
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": draw(st.integers(0, 5000)),
                "gen_ai.usage.output_tokens": draw(st.integers(0, 800)),
            }
        )
    resource = draw(_attributes(["customer.id", "enduser.id", *RESOURCE_METADATA_KEYS]))
    all_keys = sorted(attributes) or ["customer.id"]
    return SpanRecord(
        trace_id=draw(st.sampled_from([TRACE_ID] * 6 + ["0" * 32, "", "abc", "f" * 40])),
        span_id=draw(st.sampled_from([SPAN_ID] * 6 + ["0" * 16, "", "f" * 20])),
        name=draw(st.sampled_from(["chat", "", "é", "a\x00"])),
        start_time_unix_nano=draw(st.sampled_from([0, 1, 1_790_000_000_000_000_000])),
        end_time_unix_nano=draw(st.sampled_from([0, 10**22] + [1_790_000_000_123_456_789] * 6)),
        attributes=attributes,
        resource_attributes=resource,
        scope_name=draw(
            st.sampled_from(
                [
                    "",
                    "",
                    "",
                    "opentelemetry.instrumentation.bedrock",
                    "opentelemetry.instrumentation.google_generativeai",
                    "sc\ud800",
                ]
            )
        ),
        scope_version=draw(st.sampled_from(["", "1.0", "é"])),
        status_code=draw(st.sampled_from([0, 1, 2])),
        oversized_attributes=draw(
            st.one_of(
                st.just(frozenset()),
                st.just(frozenset()),
                st.frozensets(st.sampled_from(all_keys), max_size=2),
            )
        ),
        oversized_resource_attributes=draw(
            st.one_of(st.just(frozenset()), st.frozensets(st.sampled_from(["customer.id", "enduser.id"])))
        ),
    )


def _outcome(mapper, span: SpanRecord, mapping_settings: MappingSettings) -> object:
    try:
        return ("mapped", mapper(span, mapping_settings))
    except InvalidEventError as exc:
        return ("rejected", exc.reason)
    except Exception as exc:  # a hand-made record the mapping cannot read: both paths fail alike
        return ("error", type(exc))


@FUZZ
@given(usage_spans(), st.sampled_from(SETTINGS))
def test_map_span_maps_every_span_as_the_rule_by_rule_path(span, mapping_settings):
    outcome = _outcome(map_span, span, mapping_settings)
    assert outcome == _outcome(_map_any, span, mapping_settings)
    if outcome[0] == "mapped" and outcome[1] is not None:
        validate_event(outcome[1])


def test_the_ordinary_path_maps_the_usual_span_itself():
    span = SpanRecord(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "chat",
        0,
        1_790_000_000_123_456_789,
        {
            "gen_ai.system": "Anthropic",  # older spelling, read because the current one is absent
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.prompt_tokens": 100,
            "gen_ai.usage.input_tokens": 90,  # preferred over prompt_tokens
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 120,  # more than the input: Anthropic's raw count
            "customer.id": " acme ",
        },
        scope_name="any",
    )
    event = _map_ordinary(span, MappingSettings())
    assert event is not _UNSURE and event == _map_any(span, MappingSettings())
    assert (event.provider, event.input_tokens, event.customer_external_id) == ("anthropic", 210, "acme")
    assert event.metadata["spanledger.adjustments"] == ["input_tokens_plus_cache"]


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.usage.input_tokens": "12"},  # a count as a string
        {"gen_ai.usage.input_tokens": 1.0},
        {"gen_ai.usage.input_tokens": True},
        {"gen_ai.usage.input_tokens": 1, "gen_ai.provider.name": 3},  # a number for a text
        {"gen_ai.usage.input_tokens": 1, "gen_ai.response.id": None},
    ],
)
def test_values_of_other_types_are_left_to_the_rule_by_rule_path(attributes):
    span = SpanRecord("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "chat", 0, 1, attributes)
    assert _map_ordinary(span, MappingSettings()) is _UNSURE


@pytest.mark.parametrize("key", [*TABLE_KEYS, "customer.id", "enduser.id", *SPAN_METADATA_KEYS])
@pytest.mark.parametrize("value", ["", " ", "Chat", "x" * 300, "é", 0, 7, MAX_TOKENS + 1, -5])
def test_one_attribute_changed_on_a_usual_span_maps_as_the_rule_by_rule_path(key, value):
    attributes: dict[str, object] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "customer.id": "acme",
        key: value,
    }
    span = SpanRecord(TRACE_ID, SPAN_ID, "chat", 0, 1_790_000_000_123_456_789, attributes, scope_name="s")
    for mapping_settings in SETTINGS:
        assert _outcome(map_span, span, mapping_settings) == _outcome(_map_any, span, mapping_settings)
