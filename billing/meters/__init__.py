"""Meters: a name + a filter + an aggregation, computed per customer over a time window in SQL."""

from spanledger.billing.meters.aggregations import AVERAGE_PLACES, Aggregation, aggregate_values
from spanledger.billing.meters.definition import MeterDefinition
from spanledger.billing.meters.fields import FIELD_KINDS, resolve_field
from spanledger.billing.meters.filters import OPERATORS, Clause, Group, compile_filter, parse_filter
from spanledger.billing.meters.service import (
    UsageRow,
    create_meter,
    get_meter,
    list_meters,
    meter_usage,
    to_definition,
)

__all__ = [
    "AVERAGE_PLACES",
    "FIELD_KINDS",
    "OPERATORS",
    "Aggregation",
    "Clause",
    "Group",
    "MeterDefinition",
    "UsageRow",
    "aggregate_values",
    "compile_filter",
    "create_meter",
    "get_meter",
    "list_meters",
    "meter_usage",
    "parse_filter",
    "resolve_field",
    "to_definition",
]
