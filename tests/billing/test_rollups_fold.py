"""The batch fold of rollups (cells.fold_batch, days.fold_batch_days) against a plain per-event oracle.

Ingest folds every batch with :func:`fold_batch` (column by column, builtins, plain tuples), and
:func:`fold_events` — what the exactness tests compare the stored cells with — is built on it too. So
here the fold is checked against the definition written out the slow way: every event visited once,
every measure updated by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger.billing.models import ROLLUP_DIMENSIONS, ROLLUP_MEASURED_FIELDS
from spanledger.billing.rollups.cells import MEASURE_COLUMNS, CellKey, fold_batch, fold_events
from spanledger.billing.rollups.days import DAY_MEASURE_COLUMNS, day_to_row, fold_batch_days, fold_cells
from spanledger.billing.usage_event import TOKEN_FIELDS

T0 = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=-5)), ZoneInfo("Europe/Paris")]

maybe_tokens = st.one_of(st.none(), st.integers(0, 10**12))
maybe_cost = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False),
)


@st.composite
def events(draw: st.DrawFn) -> list[dict]:
    count = draw(st.integers(0, 40))
    rows = []
    for sequence in range(1, count + 1):
        minutes, microseconds = draw(st.integers(-3000, 3000)), draw(st.integers(0, 999))
        moment = T0 + timedelta(minutes=minutes, microseconds=microseconds)
        row = {
            "sequence": draw(st.integers(1, 10**9)) if draw(st.booleans()) else sequence,
            "customer_id": draw(st.sampled_from([1, 2, 3])),
            "occurred_at": moment.astimezone(draw(st.sampled_from(ZONES))),
            "event_name": draw(st.sampled_from(["gen_ai.call", "embed"])),
            "provider": draw(st.sampled_from(["openai", "", None])),
            "operation": draw(st.sampled_from(["chat", None])),
            "request_model": draw(st.sampled_from(["gpt-4o", None])),
            "response_model": draw(st.sampled_from(["gpt-4o-2024", None])),
            "upstream_cost": draw(maybe_cost),
        }
        for name in TOKEN_FIELDS:
            row[name] = draw(maybe_tokens)
        rows.append(row)
    return rows


def oracle(rows: list[dict]) -> dict[tuple, dict]:
    """The cells, one event at a time: key values → measures by column name."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        at = row["occurred_at"].astimezone(UTC)
        hour = datetime(at.year, at.month, at.day, at.hour, tzinfo=UTC)
        key = (row["customer_id"], hour, *(row[d] for d in ROLLUP_DIMENSIONS))
        cell = cells.setdefault(key, {"event_count": 0, "unknown_cost_events": 0, "max_sequence": 0})
        cell["event_count"] += 1
        cell["unknown_cost_events"] += row["upstream_cost"] is None
        cell["max_sequence"] = max(cell["max_sequence"], row["sequence"])
        for name in ROLLUP_MEASURED_FIELDS:
            if name == "total_tokens":
                parts = (row["input_tokens"], row["output_tokens"])
                value = None if parts == (None, None) else sum(part or 0 for part in parts)
            else:
                value = row[name]
            cell.setdefault(f"{name}_sum", None)
            cell.setdefault(f"{name}_count", 0)
            cell.setdefault(f"{name}_min", None)
            cell.setdefault(f"{name}_max", None)
            if value is None:
                continue
            cell[f"{name}_sum"] = value if cell[f"{name}_sum"] is None else cell[f"{name}_sum"] + value
            cell[f"{name}_count"] += 1
            low, high = cell[f"{name}_min"], cell[f"{name}_max"]
            cell[f"{name}_min"] = value if low is None or value < low else low
            cell[f"{name}_max"] = value if high is None or value > high else high
    return cells


@settings(max_examples=200, deadline=None)
@given(rows=events())
def test_fold_batch_is_the_per_event_fold(rows):
    expected = oracle(rows)
    folded = fold_batch(rows)
    assert {key: dict(zip(MEASURE_COLUMNS, measures, strict=True)) for key, measures in folded.items()} == (
        expected
    )
    assert set(fold_events(rows)) == {CellKey(*key) for key in expected}


@settings(max_examples=200, deadline=None)
@given(rows=events(), cut=st.integers(0, 40))
def test_fold_batch_days_equals_fold_cells(rows, cut):
    days = fold_batch_days(fold_batch(rows))
    into = fold_events(rows[:cut])
    fold_events(rows[cut:], into=into)  # folding in parts, as rebuild_rollups does
    by_object = {}
    for key, measures in fold_cells(into.items()).items():
        row = day_to_row(key, measures)
        by_object[(row["customer_id"], row["day"], *(row[d] for d in ROLLUP_DIMENSIONS))] = [
            row[column] for column in DAY_MEASURE_COLUMNS
        ]
    assert days == by_object


def test_a_lone_cost_is_kept_digit_for_digit():
    # 0 + value would round a Decimal past the context's 28 digits; a cell of one event must not.
    cost = Decimal("12345678901234567.123456789012")
    row = {"sequence": 1, "customer_id": 1, "occurred_at": T0, "upstream_cost": cost}
    row.update(dict.fromkeys(ROLLUP_DIMENSIONS), event_name="gen_ai.call")
    row.update(dict.fromkeys(TOKEN_FIELDS))
    ((measures),) = fold_batch([row]).values()
    values = dict(zip(MEASURE_COLUMNS, measures, strict=True))
    assert values["upstream_cost_sum"] == cost and str(values["upstream_cost_sum"]) == str(cost)
    assert values["unknown_cost_events"] == 0 and values["total_tokens_count"] == 0
    assert values["total_tokens_sum"] is None and values["input_tokens_min"] is None
