"""Fixtures for the exporter tests: a running receiver on loopback over the test ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from spanledger.billing.ingest import ingest
from spanledger.exporter.server import Receiver, ReceiverSettings


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
