"""Helpers shared by the exporter tests (importable: conftest modules all share one name)."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord


def stored_events(engine) -> dict[str, EventRecord]:
    with Session(engine) as session:
        return {row.dedupe_key: row for row in session.scalars(select(EventRecord))}


class FlakyIngest:
    """The real ingest, failing with a given error for the first ``failures`` calls, or held on a gate."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self, session, events, **kwargs):
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if self.calls <= self.failures:
            assert self.error is not None
            raise self.error
        return ingest(session, events, **kwargs)
