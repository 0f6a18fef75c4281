"""JSON Lines files of usage events: ``spanledger events import`` and ``events list --json``.

One event per line, in the form of :func:`~spanledger.billing.usage_event.event_to_json`; blank
lines are skipped. A bad line is reported with its line number and the good lines around it are
stored. Lines are ingested in batches, each in its own transaction, so a large file never holds
one huge transaction; re-importing a file stores nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from spanledger.billing.errors import InvalidEventError
from spanledger.billing.ingest import ingest
from spanledger.billing.models import Customer, EventRecord
from spanledger.billing.usage_event import (
    COLUMN_FIELDS,
    UNATTRIBUTED_CUSTOMER,
    UsageEvent,
    event_from_json,
    event_to_json,
)

__all__ = ["BadLine", "ImportReport", "import_lines", "list_events", "record_to_event"]

BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


@dataclass(slots=True)
class ImportReport:
    inserted: int = 0
    duplicates: int = 0
    merged: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return self.inserted + self.duplicates + self.merged + len(self.bad_lines)


def _parse_lines(lines: Iterable[str]) -> Iterator[tuple[int, UsageEvent | BadLine]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, event_from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            yield number, BadLine(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
        except InvalidEventError as exc:
            yield number, BadLine(number, exc.reason)
        except ValueError as exc:  # json's own limits, e.g. an integer of more than 4300 digits
            yield number, BadLine(number, f"not valid JSON ({exc})")


def import_lines(
    session_factory: sessionmaker[Session],
    lines: Iterable[str],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Ingest every good line of ``lines``; report counts and the bad lines by number."""
    report = ImportReport()
    batch: list[tuple[int, UsageEvent]] = []

    def flush() -> None:
        if not batch:
            return
        with session_factory() as session, session.begin():
            result = ingest(session, [event for _, event in batch])
        report.inserted += result.inserted
        report.duplicates += result.duplicates
        report.merged += result.merged
        report.bad_lines.extend(BadLine(batch[r.index][0], r.reason) for r in result.rejected)
        if on_progress is not None:
            on_progress(len(batch))
        batch.clear()

    for number, parsed in _parse_lines(lines):
        if isinstance(parsed, BadLine):
            report.bad_lines.append(parsed)
            continue
        batch.append((number, parsed))
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()
    report.bad_lines.sort(key=lambda bad: bad.line)
    return report


def record_to_event(record: EventRecord, customer_external_id: str) -> UsageEvent:
    """The contract form of a stored event."""
    values: dict[str, Any] = {name: getattr(record, name) for name in COLUMN_FIELDS}
    customer = None if customer_external_id == UNATTRIBUTED_CUSTOMER else customer_external_id
    return UsageEvent(customer_external_id=customer, metadata=dict(record.event_metadata or {}), **values)


def list_events(
    session: Session,
    *,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> Iterator[tuple[EventRecord, dict[str, Any]]]:
    """Stored events in ingestion order with their JSON form (plus sequence, received_at, cost)."""
    statement = (
        select(EventRecord, Customer.external_id)
        .join(Customer, Customer.id == EventRecord.customer_id)
        .order_by(EventRecord.sequence)
    )
    if customer is not None:
        statement = statement.where(Customer.external_id == customer)
    if start is not None:
        statement = statement.where(EventRecord.occurred_at >= start)
    if end is not None:
        statement = statement.where(EventRecord.occurred_at < end)
    if limit is not None:
        statement = statement.limit(limit)
    for record, external_id in session.execute(statement.execution_options(yield_per=1000)):
        document = event_to_json(record_to_event(record, external_id))
        yield record, document
