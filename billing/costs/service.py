"""Upstream costs on stored events: loaded overrides, and pricing events inside the ingest transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from spanledger.billing.costs.upstream import PriceOverride, UpstreamCostCalculator
from spanledger.billing.models import EventRecord, PriceOverrideRecord
from spanledger.billing.usage_event import UsageEvent

__all__ = ["load_overrides", "price_stored_events"]

_events = EventRecord.__table__.c
_COST_COLUMNS = (
    "sequence",
    "occurred_at",
    "dedupe_key",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)

# Built once: ingest reads the overrides in every batch, and building the statement cost more than
# running it.
_ALL_OVERRIDES = select(*PriceOverrideRecord.__table__.c)


def load_overrides(connection: Connection) -> list[PriceOverride]:
    """Every stored price override."""
    rows = connection.execute(_ALL_OVERRIDES).all()
    return [
        PriceOverride(
            r.provider,
            r.model,
            r.valid_from,
            r.input_per_million,
            r.output_per_million,
            r.cache_read_per_million,
            r.cache_write_per_million,
            r.reasoning_per_million,
            r.currency,
        )
        for r in rows
    ]


def price_stored_events(
    connection: Connection, sequences: Sequence[int], calculator: UpstreamCostCalculator | None = None
) -> UpstreamCostCalculator:
    """Compute and store ``upstream_cost`` / ``price_source`` of the events ``sequences``.

    Runs in the caller's transaction (ingest), so a committed event always carries its cost, or NULL
    when the model is unknown (counted in the returned calculator's ``warnings``).
    """
    calculator = calculator or UpstreamCostCalculator(load_overrides(connection))
    if not sequences:
        return calculator
    rows = connection.execute(
        select(*(_events[name] for name in _COST_COLUMNS)).where(_events.sequence.in_(list(sequences)))
    ).mappings()
    for row in rows:
        event = UsageEvent(
            dedupe_key=row["dedupe_key"],
            occurred_at=row["occurred_at"],
            provider=row["provider"],
            request_model=row["request_model"],
            response_model=row["response_model"],
            input_tokens=row["input_tokens"],
            cache_read_input_tokens=row["cache_read_input_tokens"],
            cache_write_input_tokens=row["cache_write_input_tokens"],
            output_tokens=row["output_tokens"],
            reasoning_tokens=row["reasoning_tokens"],
        )
        cost = calculator.cost(event)
        connection.execute(
            update(EventRecord.__table__)
            .where(_events.sequence == row["sequence"])
            .values(upstream_cost=cost.amount, upstream_cost_currency=cost.currency, price_source=cost.source)
        )
    return calculator
