"""Rollup answers equal event-scan answers, for every aggregation × filter kind × grouping.

Random ledgers are ingested through :func:`spanledger.billing.ingest.ingest` in random batches —
with second records of a call that fill NULL counts, models or the customer (merges), and events
that arrive late for hours long past — and every meter is then asked twice: through
:func:`meter_usage` / :func:`meter_totals` (rollups where they answer) and by scanning the events.
Each example runs in a transaction that is rolled back, so examples never see each other's events.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from spanledger.billing.ingest import ingest
from spanledger.billing.invoices.selection import meter_totals
from spanledger.billing.meters import MeterDefinition, meter_usage
from spanledger.billing.meters.service import _event_partials
from spanledger.billing.models import ROLLUP_MEASURED_FIELDS, Customer, UsageRollup
from spanledger.billing.rollups import answerable
from spanledger.billing.rollups.cells import cell_from_row, fold_events
from spanledger.billing.rollups.maintenance import _EVENT_COLUMNS
from spanledger.billing.usage_event import UsageEvent

T0 = datetime(2026, 11, 2, tzinfo=UTC)
SPAN_MINUTES = 3 * 60
CUSTOMERS = ["acme", "acme", "globex", None]
PROVIDERS = ["openai", "anthropic", ""]
MODELS = ["gpt-4o", "mystery-1", None]
OPERATIONS = ["chat", "chat", None]
EVENT_NAMES = ["gen_ai.call", "gen_ai.call", "gen_ai.call", "tool.call"]
DIMENSION_GROUPS = [None, "customer", "provider", "operation", "model", "request_model", "response_model"]
OTHER_GROUPS = ["metadata.feature", "input_tokens", "response_id"]

maybe_tokens = st.one_of(st.none(), st.integers(0, 5_000))


@st.composite
def usage_events(draw: st.DrawFn, index: int) -> UsageEvent:
    input_tokens = draw(maybe_tokens)
    output_tokens = draw(maybe_tokens)
    cache_read = draw(st.one_of(st.none(), st.integers(0, input_tokens))) if input_tokens else None
    reasoning = draw(st.one_of(st.none(), st.integers(0, output_tokens))) if output_tokens else None
    feature = draw(st.sampled_from(["search", "chat", None]))
    return UsageEvent(
        dedupe_key=f"call-{index}",
        occurred_at=T0
        + timedelta(minutes=draw(st.integers(0, SPAN_MINUTES)), seconds=draw(st.integers(0, 59))),
        customer_external_id=draw(st.sampled_from(CUSTOMERS)),
        event_name=draw(st.sampled_from(EVENT_NAMES)),
        provider=draw(st.sampled_from(PROVIDERS)),
        operation=draw(st.sampled_from(OPERATIONS)),
        request_model=draw(st.sampled_from(MODELS)),
        response_model=draw(st.sampled_from(MODELS)),
        response_id=draw(st.sampled_from(["r1", "r2", None])),
        input_tokens=input_tokens,
        cache_read_input_tokens=cache_read,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
        metadata={} if feature is None else {"feature": feature},
    )


def _first_record(event: UsageEvent, blanks: list[str]) -> UsageEvent:
    """An earlier, less complete record of the same call (what a merge later completes)."""
    changes = {name: None for name in blanks}
    if "customer_external_id" in blanks or "input_tokens" in blanks:
        changes["cache_read_input_tokens"] = None
    if "output_tokens" in blanks:
        changes["reasoning_tokens"] = None
    return dataclasses.replace(event, **changes)


BLANKABLE = [
    "customer_external_id",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
]


@st.composite
def ledgers(draw: st.DrawFn) -> list[list[UsageEvent]]:
    """Batches to ingest in order: complete records, incomplete first records, their completions."""
    events = [draw(usage_events(i)) for i in range(draw(st.integers(5, 40)))]
    records: list[UsageEvent] = []
    for event in events:
        if draw(st.booleans()):
            blanks = draw(st.lists(st.sampled_from(BLANKABLE), min_size=1, max_size=3, unique=True))
            records.append(_first_record(event, blanks))
        records.append(event)
    # Random order (late events, completions before or after their first record), random batches.
    order = draw(st.permutations(records))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=4, unique=True)))
    return [list(order[a:b]) for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]


def _clause(draw: st.DrawFn) -> dict:
    field = draw(
        st.sampled_from(["provider", "model", "customer", "operation", "request_model", "event_name"])
    )
    values = {
        "provider": PROVIDERS[:3],
        "model": MODELS[:2],
        "customer": ["acme", "globex", "(unattributed)"],
        "operation": ["chat", "embeddings"],
        "request_model": MODELS[:2],
        "event_name": ["gen_ai.call", "tool.call"],
    }[field]
    op = draw(st.sampled_from(["eq", "ne", "like", "in"]))
    if op == "in":
        return {
            "field": field,
            "op": op,
            "value": draw(st.lists(st.sampled_from(values), min_size=1, max_size=2)),
        }
    value = draw(st.sampled_from(values))
    if op == "like":
        value = value[:3] + "%"
    return {"field": field, "op": op, "value": value}


@st.composite
def filters(draw: st.DrawFn) -> dict | None:
    kind = draw(st.sampled_from(["none", "clause", "and", "or", "metadata", "numeric"]))
    if kind == "none":
        return None
    if kind == "clause":
        return _clause(draw)
    if kind in ("and", "or"):
        return {kind: [_clause(draw) for _ in range(draw(st.integers(1, 3)))]}
    if kind == "metadata":
        return {"field": "metadata.feature", "op": "eq", "value": "search"}
    return {"field": "input_tokens", "op": "gte", "value": 1000}


@st.composite
def meters(draw: st.DrawFn) -> tuple[MeterDefinition, str | None]:
    aggregation = draw(st.sampled_from(["count", "sum", "max", "min", "avg", "unique"]))
    field = None
    if aggregation == "unique":
        field = draw(st.sampled_from(["model", "provider", "input_tokens"]))
    elif aggregation != "count":
        field = draw(st.sampled_from(ROLLUP_MEASURED_FIELDS))
    definition = MeterDefinition.parse(
        "m",
        aggregation,
        field,
        event_name=draw(st.sampled_from(EVENT_NAMES[2:])),
        filter=draw(filters()),
    )
    group_by = draw(st.sampled_from(DIMENSION_GROUPS + OTHER_GROUPS))
    return definition, group_by


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """Whole hours or ragged edges, from minutes to the whole span (and beyond it)."""
    start = T0 + timedelta(minutes=draw(st.integers(-90, SPAN_MINUTES)))
    if draw(st.booleans()):
        start = start.replace(minute=0)
    end = start + timedelta(minutes=draw(st.integers(1, SPAN_MINUTES + 120)))
    if draw(st.booleans()) and end.replace(minute=0) > start:
        end = end.replace(minute=0)
    return start, end


def _scan(session, definition, start, end, customer, group_by):
    """The event scan: what meter_usage answered before rollups existed."""
    partials = _event_partials(session, definition, (start, end), customer, group_by)
    return {key: definition.aggregation.finish(values) for key, values in partials.items()}


def _stored_cells(session) -> dict:
    rows = session.execute(select(UsageRollup.__table__)).mappings()
    return dict(cell_from_row(row) for row in rows)


def _cells_from_events(session) -> dict:
    from spanledger.billing.models import EventRecord

    rows = session.execute(select(*_EVENT_COLUMNS).select_from(EventRecord.__table__)).mappings()
    return fold_events(rows)


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    batches=ledgers(),
    questions=st.lists(
        st.tuples(meters(), windows(), st.sampled_from([None, "acme", "nobody"])), min_size=1, max_size=8
    ),
)
def test_meter_usage_from_rollups_equals_the_event_scan(session, batches, questions):
    with session.begin():
        try:
            for batch in batches:
                ingest(session, batch)
            # The cells kept batch by batch are exactly the cells of the final events.
            assert _stored_cells(session) == _cells_from_events(session)
            for (definition, group_by), (start, end), customer in questions:
                rows = meter_usage(
                    session, definition, start=start, end=end, customer=customer, group_by=group_by
                )
                expected = _scan(session, definition, start, end, customer, group_by)
                actual = {(row.customer, row.group): row.value for row in rows}
                if not expected and customer is not None and group_by is None:
                    assert len(rows) == 1 and rows[0].customer == customer
                else:
                    assert actual == expected, (definition, group_by, start, end, customer)
                assert [(r.customer, r.group) for r in rows] == sorted(
                    ((r.customer, r.group) for r in rows), key=lambda k: (k[0], k[1] is not None, k[1] or "")
                )
        finally:
            session.rollback()


@PROPERTY
@given(
    batches=ledgers(),
    more=ledgers(),
    questions=st.lists(st.tuples(meters(), windows()), min_size=1, max_size=6),
)
def test_invoice_totals_from_rollups_equal_the_event_scan(session, batches, more, questions):
    """Invoice lines select up to a sequence: events committed after it must never count."""
    with session.begin():
        try:
            for batch in batches:
                ingest(session, batch)
            head = session.scalar(select(UsageRollup.max_sequence).order_by(UsageRollup.max_sequence.desc()))
            for batch in more:  # arrive after the run fixed its bound
                ingest(session, [dataclasses.replace(e, dedupe_key="more-" + e.dedupe_key) for e in batch])
            customers = list(session.scalars(select(Customer.id)))
            for (definition, _), (start, end) in questions:
                for customer_id in customers:
                    for bound in (head, None):
                        totals = meter_totals(
                            session,
                            definition,
                            customer_id=customer_id,
                            start=start,
                            end=end,
                            max_sequence=bound,
                        )
                        # after_sequence=0 selects the same events and always scans them.
                        scanned = meter_totals(
                            session,
                            definition,
                            customer_id=customer_id,
                            start=start,
                            end=end,
                            after_sequence=0,
                            max_sequence=bound,
                        )
                        assert (
                            totals.value,
                            totals.upstream_cost,
                            totals.unknown_cost_events,
                            totals.event_count,
                            totals.max_sequence,
                        ) == (
                            scanned.value,
                            scanned.upstream_cost,
                            scanned.unknown_cost_events,
                            scanned.event_count,
                            scanned.max_sequence,
                        ), (definition, start, end, bound)
        finally:
            session.rollback()


def test_the_property_tests_exercise_the_rollup_path():
    """Guard against a vacuous property: most drawn meters must actually be answered from rollups."""
    count = MeterDefinition.parse("c", "count", filter={"field": "model", "op": "like", "value": "gpt%"})
    assert answerable(count, "provider")
    assert not answerable(MeterDefinition.parse("u", "unique", "model"))
    assert not answerable(count, "metadata.feature")
