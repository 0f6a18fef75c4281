"""The mapping's cheaper arithmetic gives what the obvious one gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spanledger.billing.errors import InvalidEventError
from spanledger.exporter.mapping import map_span
from spanledger.exporter.spans import SpanRecord

LAST_VALID = 253_402_300_799_999_999_999  # 9999-12-31T23:59:59.999999999Z


def _span(end: int) -> SpanRecord:
    return SpanRecord(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "chat",
        0,
        end,
        {"gen_ai.usage.input_tokens": 1},
    )


@pytest.mark.parametrize("nanos", [1, 999, 1_000, 1_793_534_400_123_456_789, 2**64 - 1, LAST_VALID])
def test_span_time_is_fromtimestamp_to_the_microsecond(nanos):
    seconds, remainder = divmod(nanos, 1_000_000_000)
    expected = datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder // 1000)
    event = map_span(_span(nanos))
    assert event is not None
    assert event.occurred_at == expected and event.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("nanos", [LAST_VALID + 1_000, 10**22, 10**30])
def test_a_span_time_past_year_9999_is_rejected_with_the_reason(nanos):
    with pytest.raises(InvalidEventError, match=f"span time {nanos} ns is out of range"):
        map_span(_span(nanos))
