"""One export request, from body to answer: decode → map → group commit → OTLP outcome.

Both receivers (and the benchmark) go through :class:`TraceIntake`, so they enforce the same limits, map
spans identically and answer with the same partial-success accounting: spans that are not billable are
accepted and ignored; billable spans that cannot become valid events are *rejected* and counted in
``partial_success.rejected_spans`` with the first reasons in ``error_message``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from enum import Enum

from spanledger.exporter.group_commit import CommitOutcome, GroupCommitter
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import (
    MappingResult,
    MappingSettings,
    candidate_attribute_keys,
    map_spans,
    relevant_attribute_keys,
)
from spanledger.exporter.otlp_decoding import DecodedSpans, decode_json, decode_protobuf

__all__ = ["ExportOutcome", "PayloadFormat", "TraceIntake"]

# How many rejection reasons one answer quotes; the count is always complete.
_QUOTED_REASONS = 3


class PayloadFormat(Enum):
    PROTOBUF = "protobuf"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """The answer to one export request (after its events were committed)."""

    spans: int
    ignored: int
    stored: int
    rejected_spans: int
    error_message: str = ""


class TraceIntake:
    """Decoding, mapping and committing for one receiver process."""

    def __init__(
        self,
        committer: GroupCommitter,
        *,
        limits: ReceiverLimits | None = None,
        mapping_settings: MappingSettings | None = None,
    ) -> None:
        self.committer = committer
        self.limits = limits or ReceiverLimits()
        self.mapping_settings = mapping_settings or MappingSettings()
        self._span_keys, self._resource_keys = relevant_attribute_keys(self.mapping_settings)
        self._candidate_keys = candidate_attribute_keys()

    def decode(self, payload: bytes, payload_format: PayloadFormat) -> DecodedSpans:
        """Spans of a decompressed body that may be billable (the others are only counted, in
        ``skipped``); raises :class:`~spanledger.exporter.errors.PayloadError`."""
        decode = decode_protobuf if payload_format is PayloadFormat.PROTOBUF else decode_json
        return decode(
            payload, self.limits, self._span_keys, self._resource_keys, candidate_keys=self._candidate_keys
        )

    def map(self, payload: bytes, payload_format: PayloadFormat) -> MappingResult:
        """Decode and map a request; skipped spans count as ignored (indexes refer to the decoded spans)."""
        spans = self.decode(payload, payload_format)
        mapping = map_spans(spans, self.mapping_settings)
        if spans.skipped:
            mapping = dataclasses.replace(mapping, ignored=mapping.ignored + spans.skipped)
        return mapping

    def export(self, payload: bytes, payload_format: PayloadFormat) -> ExportOutcome:
        """Handle a request and block until its events are committed (for thread-based servers)."""
        with self.committer.arriving():
            mapping = self.map(payload, payload_format)
            future = self.committer.submit(mapping.events)
        return _outcome(mapping, future.result())

    async def export_async(self, payload: bytes, payload_format: PayloadFormat) -> ExportOutcome:
        """Handle a request and await the commit without blocking the event loop."""
        with self.committer.arriving():
            mapping = self.map(payload, payload_format)
            future = self.committer.submit(mapping.events)
        return _outcome(mapping, await asyncio.wrap_future(future))


def _outcome(mapping: MappingResult, commit: CommitOutcome) -> ExportOutcome:
    reasons = [f"span {r.span_id or '?'}: {r.reason}" for r in mapping.rejected]
    reasons += [f"span {mapping.events[r.index].span_id or '?'}: {r.reason}" for r in commit.rejected]
    rejected = len(reasons)
    spans = len(mapping.events) + mapping.ignored + len(mapping.rejected)
    message = ""
    if rejected:
        quoted = "; ".join(reasons[:_QUOTED_REASONS])
        more = f" (and {rejected - _QUOTED_REASONS} more)" if rejected > _QUOTED_REASONS else ""
        message = f"rejected {rejected} of {spans} spans: {quoted}{more}"
    return ExportOutcome(spans, mapping.ignored, commit.accepted, rejected, message)
