"""Hourly usage rollups: per customer, UTC hour and dimensions, exact as soon as their events commit.

- :mod:`.cells` — the pure core: fold events into cells, combine cells.
- :mod:`.maintenance` — kept in the ingest transaction (:func:`update_rollups`); :func:`rebuild_rollups`.
- :mod:`.queries` — which meters rollups answer exactly, and the SQL that does.

See ``docs/scale.md`` for the design and its trade-offs.
"""

from spanledger.billing.rollups.cells import CellKey, CellMeasures, FieldSummary, fold_events, hour_of
from spanledger.billing.rollups.maintenance import (
    add_cells,
    rebuild_rollups,
    refresh_rollups,
    update_rollups,
    write_cells,
)
from spanledger.billing.rollups.queries import (
    DIMENSION_FIELDS,
    answerable,
    combine_partials,
    rollup_totals_row,
    rollup_usage_partials,
    split_window,
)

__all__ = [
    "DIMENSION_FIELDS",
    "CellKey",
    "CellMeasures",
    "FieldSummary",
    "add_cells",
    "answerable",
    "combine_partials",
    "fold_events",
    "hour_of",
    "rebuild_rollups",
    "refresh_rollups",
    "rollup_totals_row",
    "rollup_usage_partials",
    "split_window",
    "update_rollups",
    "write_cells",
]
