"""driver_executemany.executemany gives exactly what connection.execute(statement, rows) gives: the
rollup cell delta UPDATE (repeated binds, bound constants, exact decimals, NULLs) applied both ways to
twin rows must leave them identical, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import insert, select

from spanledger.billing.driver_executemany import executemany
from spanledger.billing.ingest import ensure_customers
from spanledger.billing.models import ROLLUP_MEASURED_FIELDS, UsageRollup
from spanledger.billing.rollups.cells import CellKey, CellMeasures, FieldSummary, cell_to_row
from spanledger.billing.rollups.maintenance import _ADD_CELL_DELTA, _cell_delta

HOUR = datetime(2026, 11, 3, 10, tzinfo=UTC)
_table = UsageRollup.__table__


def measures(cost: Decimal | None, tokens: int | None, events: int = 2, sequence: int = 7) -> CellMeasures:
    cell = CellMeasures(
        event_count=events, unknown_cost_events=1 if cost is None else 0, max_sequence=sequence
    )
    for name in ROLLUP_MEASURED_FIELDS:
        value = cost if name == "upstream_cost" else tokens
        cell.fields[name] = FieldSummary() if value is None else FieldSummary(value, 1, value, value)
    return cell


def test_the_cell_delta_update_matches_sqlalchemys_executemany(session):
    with session.begin():
        connection = session.connection()
        customer = ensure_customers(connection, ["acme"], HOUR)["acme"]
        stored = measures(Decimal("0.000001234567"), 10)
        ids = []
        for model in ("twin-a", "twin-b", "twin-c", "twin-d"):
            key = CellKey(customer, HOUR, "gen_ai.call", "openai", "chat", model, None)
            ids.append(
                connection.execute(insert(_table).values(cell_to_row(key, stored))).inserted_primary_key[0]
            )
        deltas = [
            measures(Decimal("1.5"), 3, events=3, sequence=9),  # lower minimum, higher maximum, new sequence
            measures(None, None, events=1, sequence=5),  # nothing counted: sums, minimum and maximum stay
        ]
        # Rows a and c by the driver path, b and d by SQLAlchemy's own executemany.
        executemany(
            connection, _ADD_CELL_DELTA, [_cell_delta(ids[0], deltas[0]), _cell_delta(ids[2], deltas[1])]
        )
        connection.execute(_ADD_CELL_DELTA, [_cell_delta(ids[1], deltas[0]), _cell_delta(ids[3], deltas[1])])
        rows = {row["request_model"]: row for row in connection.execute(select(_table)).mappings()}
    measure_columns = [c.name for c in _table.c if c.name not in ("id", "request_model")]
    for driver, sqlalchemy in (("twin-a", "twin-b"), ("twin-c", "twin-d")):
        assert {c: rows[driver][c] for c in measure_columns} == {
            c: rows[sqlalchemy][c] for c in measure_columns
        }
    assert rows["twin-a"]["event_count"] == 5 and rows["twin-a"]["max_sequence"] == 9
    assert rows["twin-a"]["upstream_cost_sum"] == Decimal("1.500001234567")
    assert rows["twin-a"]["upstream_cost_min"] == Decimal("0.000001234567")
    assert rows["twin-a"]["input_tokens_min"] == 3 and rows["twin-a"]["input_tokens_max"] == 10
    assert rows["twin-c"]["event_count"] == 3 and rows["twin-c"]["max_sequence"] == 7
    assert rows["twin-c"]["input_tokens_sum"] == 10 and rows["twin-c"]["unknown_cost_events"] == 1
