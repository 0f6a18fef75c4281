"""Usage rollups per customer, UTC hour (and UTC day) and dimensions, exact as soon as their events commit.

- :mod:`.cells` — the pure core: fold events into cells, combine cells.
- :mod:`.days` — the pure core of the daily cells: hourly cells summed by day (sums and counts only).
- :mod:`.maintenance` — both kept in the ingest transaction (:func:`update_rollups`);
  :func:`rebuild_rollups`, :func:`rebuild_days`.
- :mod:`.queries` — which meters rollups answer exactly, and the SQL that does.

See ``docs/scale.md`` for the design and its trade-offs.
"""

from spanledger.billing.rollups.cells import CellKey, CellMeasures, FieldSummary, fold_events, hour_of
from spanledger.billing.rollups.days import DayKey, DayMeasures, fold_cells
from spanledger.billing.rollups.maintenance import (
    add_cells,
    add_days,
    rebuild_days,
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
    split_days,
    split_window,
)

__all__ = [
    "DIMENSION_FIELDS",
    "CellKey",
    "CellMeasures",
    "DayKey",
    "DayMeasures",
    "FieldSummary",
    "add_cells",
    "add_days",
    "answerable",
    "combine_partials",
    "fold_cells",
    "fold_events",
    "hour_of",
    "rebuild_days",
    "rebuild_rollups",
    "refresh_rollups",
    "rollup_totals_row",
    "rollup_usage_partials",
    "split_days",
    "split_window",
    "update_rollups",
    "write_cells",
]
