"""Anthropic's Messages wire format.

Usage mapping (see docs/instrumentation.md): Anthropic's ``input_tokens`` excludes cache reads and
writes, so input = ``input_tokens`` + ``cache_read_input_tokens`` + ``cache_creation_input_tokens``;
cache read and cache creation are reported as such; ``output_tokens`` already includes extended-thinking
tokens, which Anthropic does not break out (reasoning stays unreported).

In a stream, ``message_start`` carries the initial usage and each ``message_delta`` carries cumulative
counts: a field present in a later event replaces the earlier value, never adds to it.
"""

from __future__ import annotations

import json
from typing import Any

from spanledger.instrumentation.facts import ResponseFacts, Usage, as_count

__all__ = ["MessagesReader", "usage_from_anthropic"]

_USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")
_FACT_EVENTS = frozenset({"message_start", "message_delta"})


def usage_from_anthropic(usage: object) -> Usage | None:
    """Normalise an Anthropic ``usage`` object (input made to include the cache parts)."""
    if not isinstance(usage, dict):
        return None
    uncached = as_count(usage.get("input_tokens"))
    cache_read = as_count(usage.get("cache_read_input_tokens"))
    cache_creation = as_count(usage.get("cache_creation_input_tokens"))
    output_tokens = as_count(usage.get("output_tokens"))
    parts = [count for count in (uncached, cache_read, cache_creation) if count is not None]
    if not parts and output_tokens is None:
        return None
    return Usage(
        input_tokens=sum(parts) if parts else None,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
    )


class MessagesReader:
    """Reads a Messages response: one ``message`` object, or its event stream."""

    __slots__ = ("_facts", "_usage")

    def __init__(self) -> None:
        self._facts = ResponseFacts()
        self._usage: dict[str, Any] = {}

    def read_body(self, body: bytes) -> None:
        data = json.loads(body)
        if isinstance(data, dict):
            self._read_message(data)

    def read_event(self, event: str | None, data: bytes) -> None:
        if event is None:
            if b"message_start" not in data and b"message_delta" not in data:
                return
        elif event not in _FACT_EVENTS:
            return
        payload = json.loads(data)
        if not isinstance(payload, dict):
            return
        kind = payload.get("type")
        if kind == "message_start" and isinstance(payload.get("message"), dict):
            self._read_message(payload["message"])
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self._facts.finish_reasons = [delta["stop_reason"]]
            self._merge_usage(payload.get("usage"))

    def facts(self) -> ResponseFacts:
        self._facts.usage = usage_from_anthropic(self._usage) if self._usage else None
        return self._facts

    def _read_message(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("id"), str):
            self._facts.response_id = message["id"]
        if isinstance(message.get("model"), str):
            self._facts.response_model = message["model"]
        if isinstance(message.get("stop_reason"), str):
            self._facts.finish_reasons = [message["stop_reason"]]
        self._merge_usage(message.get("usage"))

    def _merge_usage(self, usage: object) -> None:
        # Cumulative counts: a later value replaces the earlier one.
        if isinstance(usage, dict):
            for name in _USAGE_FIELDS:
                if usage.get(name) is not None:
                    self._usage[name] = usage[name]
