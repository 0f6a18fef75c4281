"""``SpanledgerSpanExporter``: record usage straight into the ledger from inside the application.

Registered as the ``opentelemetry_traces_exporter`` entry point ``spanledger``, so::

    OTEL_TRACES_EXPORTER=otlp,spanledger opentelemetry-instrument python app.py

keeps sending traces to the usual backend and also writes one usage event per billable span, with no
receiver. Configured by the environment only (``SPANLEDGER_DATABASE_URL``, ``SPANLEDGER_CUSTOMER_ATTRIBUTES``
…). As every OpenTelemetry exporter, it returns a :class:`SpanExportResult` and never raises into the
application; transient storage failures are retried with jittered backoff within ``timeout_seconds``.
Each ``export`` commits before it returns, so nothing is buffered: ``shutdown`` and ``force_flush`` have
nothing left to write and only release the database.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import inspect

from spanledger.billing.errors import StorageUnavailableError
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import MappingSettings, candidate_attribute_keys, map_spans
from spanledger.exporter.sdk_spans import span_record_from_sdk

__all__ = ["SpanledgerSpanExporter"]

_log = logging.getLogger(__name__)


class SpanledgerSpanExporter(SpanExporter):
    """A span exporter that ingests billable spans into the spanledger ledger."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        mapping_settings: MappingSettings | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        # Nothing touches the database here: an exporter built by the SDK at start-up must not fail the app.
        self._database_url = database_url
        self._mapping = mapping_settings or MappingSettings.from_environment()
        self._max_attribute_length = ReceiverLimits.from_environment().max_attribute_length
        self._timeout = timeout_seconds
        self._candidate_keys = candidate_attribute_keys()
        self._lock = threading.Lock()
        self._engine = None
        self._sessions = None
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            _log.warning("spanledger exporter is shut down; dropping %d spans", len(spans))
            return SpanExportResult.FAILURE
        try:
            # Spans with no usage or operation attribute are never billable: not even converted (this
            # runs in the application's export thread).
            not_candidate = self._candidate_keys.isdisjoint
            records = [
                span_record_from_sdk(span, self._max_attribute_length)
                for span in spans
                if not not_candidate(span.attributes or ())
            ]
            mapping = map_spans(records, self._mapping)
            for rejected in mapping.rejected:
                _log.warning("span %s not billable as sent: %s", rejected.span_id, rejected.reason)
            if not mapping.events:
                return SpanExportResult.SUCCESS
            return self._store(mapping.events)
        except Exception:
            _log.exception("spanledger exporter failed; the spans were not recorded")
            return SpanExportResult.FAILURE

    def _store(self, events: Sequence[object]) -> SpanExportResult:
        from spanledger.billing.ingest import ingest

        deadline = time.monotonic() + self._timeout
        attempt = 0
        while True:
            try:
                with self._session_factory()() as session:
                    # mapped spans are validated events already
                    result = ingest(session, events, validated=True)  # type: ignore[arg-type]
                    session.commit()
                for rejected in result.rejected:
                    _log.warning("usage event %s rejected: %s", rejected.dedupe_key, rejected.reason)
                return SpanExportResult.SUCCESS
            except StorageUnavailableError as exc:
                backoff = min(2**attempt, 8) * random.uniform(0.8, 1.2) * 0.1
                attempt += 1
                if self._shutdown or time.monotonic() + backoff > deadline:
                    _log.error(
                        "spanledger ledger unavailable, %d usage events not recorded: %s", len(events), exc
                    )
                    return SpanExportResult.FAILURE
                time.sleep(backoff)

    def _session_factory(self):
        with self._lock:
            if self._sessions is None:
                from spanledger.billing.db import create_engine_from_url, make_session_factory
                from spanledger.billing.migrate import current_revision, upgrade

                engine = create_engine_from_url(self._database_url)
                # Zero configuration on the SQLite default: create the schema of a brand-new ledger. An
                # existing ledger is never migrated from inside an application (`spanledger db upgrade`).
                if current_revision(engine) is None and not inspect(engine).has_table("usage_events"):
                    upgrade(engine)
                self._engine, self._sessions = engine, make_session_factory(engine)
            return self._sessions

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Every export has committed before returning; nothing is pending."""
        return True

    def shutdown(self) -> None:
        """Refuse further exports and release the database (exports already returned are committed)."""
        self._shutdown = True
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._sessions = None
