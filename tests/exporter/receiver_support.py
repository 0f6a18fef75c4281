"""Helpers shared by the exporter tests (importable: conftest modules all share one name)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


def start_serve(database_url: str, *arguments: str) -> tuple[subprocess.Popen, int, int | None]:
    """``spanledger serve`` in a subprocess on free loopback ports; returns it, its gRPC and HTTP ports.

    ``arguments`` are added to ``serve`` (e.g. ``--http off``, ``--workers 2``).
    """
    command = [
        sys.executable, "-c", "from spanledger.billing.cli import main; main()",
        "--database-url", database_url,
        "serve", "--grpc", "127.0.0.1:0", "--no-migrate",
    ]  # fmt: skip
    if "--http" not in arguments:
        command += ["--http", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*command, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SPANLEDGER_RETRY_AFTER_SECONDS": "0"},
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        found = re.search(r"OTLP/gRPC on (\d+), OTLP/HTTP on (\d+|off)", line)
        if found:
            # Keep draining the output so the process never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            http = found.group(2)
            return process, int(found.group(1)), None if http == "off" else int(http)
    raise AssertionError(f"spanledger serve did not start (exit {process.wait()}): {''.join(seen)}")
