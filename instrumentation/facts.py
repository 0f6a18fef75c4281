"""What one LLM call reported: plain data shared by the wire-format readers and the span recorder.

Token counts are already normalised to the OpenTelemetry GenAI meaning: ``input_tokens`` includes
cached (read and written) tokens and ``output_tokens`` includes reasoning tokens. A count the provider
did not report stays ``None`` — never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["CallSpec", "ResponseFacts", "ResponseReader", "Usage", "as_count"]


@dataclass(slots=True)
class Usage:
    """Normalised token counts of one call."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None


@dataclass(slots=True)
class ResponseFacts:
    """Everything the span needs from a response (no content)."""

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: Usage | None = None


class ResponseReader(Protocol):
    """Reads one response of one wire format, whole or event by event."""

    def read_body(self, body: bytes) -> None:
        """Take the facts from a complete (non-streamed) JSON body."""

    def read_event(self, event: str | None, data: bytes) -> None:
        """Take the facts from one stream event (SSE ``event:`` name, or ``None``, and its data)."""

    def facts(self) -> ResponseFacts:
        """The facts gathered so far."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A recognised LLM request: what to put on the span before the response arrives."""

    operation: str
    provider: str
    request_model: str | None
    streaming: bool
    server_address: str | None
    server_port: int | None
    new_reader: Callable[[], ResponseReader]
    #: The rewritten request body when ``stream_options.include_usage`` was added, else ``None``.
    rewritten_body: bytes | None = None


def as_count(value: object) -> int | None:
    """A token count from JSON, or ``None`` when absent or not a non-negative whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
