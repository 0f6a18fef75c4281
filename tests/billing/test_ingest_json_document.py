"""ingest's plain-JSON check of event metadata, unrolled for speed, answers as the per-value rule does.

A document that passes is stored as it is (no JSON round trip); one that does not is round-tripped or
rejected. So the unrolled check must agree with :func:`_plain_json_value` applied to every key and value.
"""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger.billing.ingest import _plain_json_document, _plain_json_value

KEYS = st.one_of(
    st.text(max_size=4), st.sampled_from(["a\x00", "\x00", "ü", "\ud800"]), st.integers(), st.none()
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.sampled_from(["x\x00y", "\x00", "\ud800", "snow \u2603", -0.0, Decimal("1.5"), b"bytes"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.text(max_size=2), inner, max_size=2),
    ),
    max_leaves=6,
)


def per_value_rule(metadata: dict) -> bool:
    return all(
        type(key) is str and "\x00" not in key and _plain_json_value(value) for key, value in metadata.items()
    )


@settings(max_examples=600, deadline=None)
@given(metadata=st.dictionaries(KEYS, VALUES, max_size=6))
def test_unrolled_check_equals_the_per_value_rule(metadata):
    assert _plain_json_document(metadata) == per_value_rule(metadata)


def test_edge_documents():
    cases = [
        ({}, True),
        ({"a": "b", "n": 1, "t": True, "z": None, "f": 1.5}, True),
        ({"big": 2**200}, True),
        ({"tags": ["a", 1, None, 2.5, True]}, True),
        ({"nested": [["a"]]}, False),
        ({"nan": math.nan}, False),
        ({"inf": -math.inf}, False),
        ({"nul": "a\x00"}, False),
        ({"a\x00": "b"}, False),
        ({1: "b"}, False),
        ({"d": {"x": 1}}, False),
        ({"t": ("a",)}, False),
        ({"dec": Decimal(1)}, False),
        ({"list-nul": ["\x00"]}, False),
    ]
    for metadata, plain in cases:
        assert _plain_json_document(metadata) is plain, metadata
        assert per_value_rule(metadata) is plain, metadata
