"""Fixtures for the exporter tests: a running receiver on loopback over the test ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from spanledger.billing.ingest import ingest
from spanledger.billing.models import EventRecord
from spanledger.exporter.server import Receiver, ReceiverSettings


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


@pytest.fixture
def start_receiver(engine, database_url) -> Iterator[Callable[..., Receiver]]:
    """Start a receiver on 127.0.0.1 (random ports) over the test ledger; stopped after the test."""
    started: list[Receiver] = []

    def start(ingest_function=ingest, **overrides) -> Receiver:
        settings = ReceiverSettings(
            database_url=database_url,
            grpc_endpoint="127.0.0.1:0",
            http_endpoint="127.0.0.1:0",
            migrate=False,
            retry_after_seconds=0.0,
            shutdown_grace_seconds=5.0,
        ).replace(**overrides)
        receiver = Receiver(settings, ingest_function=ingest_function)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
