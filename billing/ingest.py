"""Storing usage events: idempotent, exactly once, one bad event never costs the good ones.

:func:`ingest` is the one door into the ledger, used by the OTLP receivers, the in-process span
exporter and ``spanledger events import``. It works inside the caller's transaction and does not
commit: the caller commits, then acknowledges (so an acknowledged event is a durable event).

What happens to a batch, in order:

1. Each event is validated; a bad one is reported in :attr:`IngestResult.rejected` with its index
   and reason, and the rest go on.
2. Two records of the same call in one batch (same dedupe key) are merged (see below).
3. Each event is priced (:mod:`spanledger.billing.costs`) and turned into its row — before the
   transaction starts, with the price overrides this process read last (re-priced under the lock
   if they changed since).
4. The ``ingest_state`` row is locked, so ingest transactions are serialised and
   ``usage_events.sequence`` grows in commit order.
5. Unknown customers are created (external id only, currency USD; name and email can be set later
   with ``spanledger customers create``). Events with no customer go to the reserved
   :data:`~spanledger.billing.usage_event.UNATTRIBUTED_CUSTOMER` bucket.
6. Events are numbered and inserted with ``ON CONFLICT (dedupe_key) DO NOTHING``
   (:mod:`spanledger.billing.event_store`); then, in the same transaction, the credit consumption
   entries (:mod:`spanledger.billing.credits`) and the hourly rollups of the new or merged events are
   written.
7. A conflict is a second record of a call already stored (a retried export, or two
   instrumentations recording one call). It is merged into the stored event by
   :func:`merge_event`: the stored values always win; the second record only fills what the
   first lacked (NULL token counts, models, response id, new metadata keys) and may attribute an
   unattributed event to its customer. So the most complete account of the call is kept, and the
   result is the same in whichever order the two records arrive.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from spanledger.billing.costs.service import load_overrides
from spanledger.billing.costs.upstream import PriceOverride, UpstreamCostCalculator
from spanledger.billing.credits.service import record_consumption
from spanledger.billing.db import storage_errors
from spanledger.billing.errors import InvalidEventError
from spanledger.billing.event_store import insert_event_rows, take_sequences
from spanledger.billing.models import INGEST_STATE_ID, Customer, EventRecord, IngestState
from spanledger.billing.rollups.maintenance import update_rollups
from spanledger.billing.usage_event import COLUMN_FIELDS, UNATTRIBUTED_CUSTOMER, UsageEvent, validate_event

__all__ = ["IngestResult", "RejectedEvent", "ensure_customers", "ingest", "merge_event"]

logger = logging.getLogger(__name__)

# Fields a second record of the same call may fill in when the stored event has them NULL.
_FILLABLE_FIELDS = (
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "input_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)
# The event fields stored in ``usage_events`` columns of the same name.
_ROW_FIELDS = (*COLUMN_FIELDS, "metadata")
_row_field_values = attrgetter(*_ROW_FIELDS)


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event that was not stored: its position in the batch, its key if it had one, and why."""

    index: int
    dedupe_key: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What :func:`ingest` did with a batch. ``inserted + duplicates + merged + len(rejected)``
    equals the batch size (in-batch repeats of one call count as duplicates or merges)."""

    inserted: int = 0
    duplicates: int = 0
    merged: int = 0
    rejected: tuple[RejectedEvent, ...] = ()
    inserted_sequences: tuple[int, ...] = ()
    merged_sequences: tuple[int, ...] = ()

    @property
    def accepted(self) -> int:
        """Events now accounted for in the ledger (new, repeated or merged)."""
        return self.inserted + self.duplicates + self.merged


def merge_event(stored: UsageEvent, incoming: UsageEvent) -> UsageEvent | None:
    """The stored event completed with what ``incoming`` adds, or ``None`` if it adds nothing.

    Stored values always win; see the module docstring. A merge whose result would break the
    contract (for example cache reads above the input count) is refused and ``None`` returned.
    """
    changes: dict[str, Any] = {}
    if stored.customer_external_id is None and incoming.customer_external_id is not None:
        changes["customer_external_id"] = incoming.customer_external_id
    for name in _FILLABLE_FIELDS:
        if getattr(stored, name) is None and getattr(incoming, name) is not None:
            changes[name] = getattr(incoming, name)
    new_keys = {k: v for k, v in incoming.metadata.items() if k not in stored.metadata}
    if new_keys:
        changes["metadata"] = {**stored.metadata, **new_keys}
    if not changes:
        return None
    merged = dataclasses.replace(stored, **changes)
    try:
        validate_event(merged)
    except InvalidEventError as exc:
        logger.warning("not merging a second record of %s: %s", stored.dedupe_key, exc.reason)
        return None
    return merged


def ingest(
    session: Session,
    events: Sequence[UsageEvent],
    *,
    received_at: datetime | None = None,
    validated: bool = False,
) -> IngestResult:
    """Store ``events`` exactly once, in the session's transaction (the caller commits).

    ``validated``: the caller has run :func:`~spanledger.billing.usage_event.validate_event` on every
    event already (the receivers' span mapping does, to reject a bad span with its own reason), so it is
    not repeated here. Metadata is still checked for JSON storage.

    Raises :class:`~spanledger.billing.errors.StorageUnavailableError` when the database is
    down or locked (nothing is stored; retry), and never for a bad event.
    """
    received_at = received_at or datetime.now(UTC)
    rejected: list[RejectedEvent] = []
    unique: dict[str, UsageEvent] = {}
    in_batch_duplicates = in_batch_merges = 0
    for index, event in enumerate(events):
        try:
            if not validated:
                validate_event(event)
            metadata = _json_document(event.metadata)
        except InvalidEventError as exc:
            rejected.append(RejectedEvent(index, _dedupe_key_of(event), exc.reason))
            continue
        if metadata is not event.metadata:
            event = dataclasses.replace(event, metadata=metadata)
        earlier = unique.get(event.dedupe_key)
        if earlier is None:
            unique[event.dedupe_key] = event
            continue
        merged = merge_event(earlier, event)
        if merged is None:
            in_batch_duplicates += 1
        else:
            unique[event.dedupe_key] = merged
            in_batch_merges += 1
    if not unique:
        return IngestResult(duplicates=in_batch_duplicates, merged=in_batch_merges, rejected=tuple(rejected))

    # Every committed event carries its upstream cost, priced before it is written. Pricing and
    # building the rows happen before the transaction starts (on SQLite every transaction takes the
    # write lock), with the price overrides this process saw last; under the lock the overrides are
    # read again and, if they changed meanwhile, the batch is priced anew. So receivers sharing a
    # ledger wait on each other only for the writes, and no event is priced with stale overrides.
    database = _database_key(session)
    overrides = _overrides_seen.get(database, [])
    calculator = UpstreamCostCalculator(overrides)
    rows = {key: _row(event, received_at, calculator) for key, event in unique.items()}
    with storage_errors():
        connection = session.connection()
        _lock_ingest(connection, received_at)
        current_overrides = load_overrides(connection)
        if current_overrides != overrides:
            _overrides_seen[database] = current_overrides
            calculator = UpstreamCostCalculator(current_overrides)
            rows = {key: _row(event, received_at, calculator) for key, event in unique.items()}
        customer_ids = ensure_customers(
            connection,
            {e.customer_external_id or UNATTRIBUTED_CUSTOMER for e in unique.values()},
            received_at,
        )
        stored = _insert_new(connection, rows, unique, customer_ids)
        new_rows = [row for row in rows.values() if row["sequence"] in stored]
        inserted = [row["sequence"] for row in new_rows]  # increasing: numbered in batch order
        conflicting = [unique[row["dedupe_key"]] for row in rows.values() if row["sequence"] not in stored]
        merged_sequences = _merge_into_stored(connection, conflicting, customer_ids, calculator)
        # Credit balances are exact as soon as the events that consume them commit; a merged event
        # appends only the difference to what it consumed before.
        record_consumption(connection, inserted, merged=merged_sequences)
        # Hourly rollups too: exact as soon as the batch commits (a merge recomputes its cells).
        update_rollups(connection, new_rows, merged_sequences)
        if inserted:
            connection.execute(_COUNT_INGESTED, {"count": len(inserted)})
    return IngestResult(
        inserted=len(inserted),
        duplicates=in_batch_duplicates + len(conflicting) - len(merged_sequences),
        merged=in_batch_merges + len(merged_sequences),
        rejected=tuple(rejected),
        inserted_sequences=tuple(inserted),
        merged_sequences=tuple(merged_sequences),
    )


#: The price overrides last read from each database (keyed by :func:`_database_key`).
_overrides_seen: dict[str, list[PriceOverride]] = {}


def _database_key(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def _dedupe_key_of(event: object) -> str | None:
    key = getattr(event, "dedupe_key", None)
    return key if isinstance(key, str) else None


def _json_document(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as plain JSON that both databases store (PostgreSQL rejects NUL in JSONB)."""
    if type(metadata) is dict and _plain_json_document(metadata):
        return metadata  # already what a JSON round trip would give back: skip it
    try:
        text = json.dumps(dict(metadata), default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"metadata is not JSON-serialisable: {exc}") from exc
    if "\\u0000" in text:
        raise InvalidEventError("metadata contains a NUL character")
    document: dict[str, Any] = json.loads(text)
    return document


def _plain_json_document(metadata: dict[Any, Any]) -> bool:
    """Whether a JSON round trip gives ``metadata`` back unchanged: text keys and plain values, no NUL.

    :func:`_plain_json_value` for each value, unrolled for the usual flat document of texts and numbers
    (this runs for every event).
    """
    for key, value in metadata.items():
        if type(key) is not str or "\x00" in key:
            return False
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return False
        elif kind is not int and kind is not bool and value is not None and not _plain_json_value(value):
            return False
    return True


_JSON_SCALARS = (int, bool, type(None))


def _plain_json_value(value: Any) -> bool:
    """Whether ``value`` comes back unchanged from a JSON round trip (no conversion, no NUL)."""
    kind = type(value)
    if kind is str:
        return "\x00" not in value
    if kind in _JSON_SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(type(item) is not list and _plain_json_value(item) for item in value)
    return False


# Ingest's fixed statements are built once: building one (columns, operators, coercions) cost several
# times its execution, for every batch, and a batch is often a single export request.
_ingest_state = IngestState.__table__
_LOCK_INGEST = (
    update(_ingest_state)
    .where(_ingest_state.c.id == INGEST_STATE_ID)
    .values(last_ingest_at=bindparam("now", type_=_ingest_state.c.last_ingest_at.type))
)
_COUNT_INGESTED = (
    update(_ingest_state)
    .where(_ingest_state.c.id == INGEST_STATE_ID)
    .values(
        ingested_events=_ingest_state.c.ingested_events
        + bindparam("count", type_=_ingest_state.c.ingested_events.type)
    )
)
_customers = Customer.__table__
_CUSTOMER_IDS = select(_customers.c.external_id, _customers.c.id).where(
    _customers.c.external_id.in_(bindparam("external_ids", expanding=True))
)


def _lock_ingest(connection: Connection, now: datetime) -> None:
    connection.execute(_LOCK_INGEST, {"now": now})


def _dialect_insert(connection: Connection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def ensure_customers(connection: Connection, external_ids: Iterable[str], now: datetime) -> dict[str, int]:
    """Map external ids to customer ids, creating the customers that do not exist yet."""
    wanted = sorted(set(external_ids))
    found = _customer_ids(connection, wanted)
    missing = [external_id for external_id in wanted if external_id not in found]
    if missing:
        statement = _dialect_insert(connection, Customer.__table__).on_conflict_do_nothing(
            index_elements=["external_id"]
        )
        connection.execute(
            statement,
            [{"external_id": external_id, "currency": "USD", "created_at": now} for external_id in missing],
        )
        found.update(_customer_ids(connection, missing))
    return found


def _customer_ids(connection: Connection, external_ids: list[str]) -> dict[str, int]:
    rows = connection.execute(_CUSTOMER_IDS, {"external_ids": external_ids})
    return {external_id: customer_id for external_id, customer_id in rows}


def _row(event: UsageEvent, received_at: datetime, calculator: UpstreamCostCalculator) -> dict[str, Any]:
    """The ``usage_events`` row of ``event``, priced, without its ``customer_id`` and ``sequence``."""
    row = dict(zip(_ROW_FIELDS, _row_field_values(event), strict=True))
    row["received_at"] = received_at
    cost = calculator.cost(event)
    row["upstream_cost"] = cost.amount
    row["upstream_cost_currency"] = cost.currency
    row["price_source"] = cost.source
    return row


def _insert_new(
    connection: Connection,
    rows: dict[str, dict[str, Any]],
    events: dict[str, UsageEvent],
    customer_ids: dict[str, int],
) -> set[int]:
    """Insert the rows whose key is not stored yet, numbered in batch order; their sequences."""
    for row, sequence in zip(rows.values(), take_sequences(connection, len(rows)), strict=True):
        row["sequence"] = sequence
        customer = events[row["dedupe_key"]].customer_external_id or UNATTRIBUTED_CUSTOMER
        row["customer_id"] = customer_ids[customer]
    return set(insert_event_rows(connection, list(rows.values())))


def _merge_into_stored(
    connection: Connection,
    incoming: list[UsageEvent],
    customer_ids: dict[str, int],
    calculator: UpstreamCostCalculator,
) -> list[int]:
    if not incoming:
        return []
    table = EventRecord.__table__
    # No row locks needed: the ingest lock already serialises every writer of usage_events.
    stored_rows = connection.execute(
        select(table, Customer.external_id.label("customer_external_id"))
        .join(Customer, Customer.id == table.c.customer_id)
        .where(table.c.dedupe_key.in_([e.dedupe_key for e in incoming]))
    ).mappings()
    stored_by_key = {row["dedupe_key"]: row for row in stored_rows}
    merged_sequences: list[int] = []
    for event in incoming:
        row = stored_by_key.get(event.dedupe_key)
        if row is None:  # pragma: no cover - the conflict row always exists under the ingest lock
            continue
        stored = _event_from_row(row)
        merged = merge_event(stored, event)
        if merged is None:
            continue
        values = _row(merged, row["received_at"], calculator)
        values["customer_id"] = customer_ids[merged.customer_external_id or UNATTRIBUTED_CUSTOMER]
        for unchanged in ("dedupe_key", "received_at", "occurred_at", "trace_id", "span_id", "event_name"):
            values.pop(unchanged)
        connection.execute(update(table).where(table.c.sequence == row["sequence"]).values(values))
        merged_sequences.append(row["sequence"])
    return merged_sequences


def _event_from_row(row: Mapping[str, Any]) -> UsageEvent:
    values = {name: row[name] for name in COLUMN_FIELDS}
    external_id = row["customer_external_id"]
    values["customer_external_id"] = None if external_id == UNATTRIBUTED_CUSTOMER else external_id
    return UsageEvent(metadata=dict(row["metadata"] or {}), **values)
