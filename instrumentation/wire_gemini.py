"""Google Gemini's ``generateContent`` / ``streamGenerateContent`` wire format (Developer API and Vertex).

Usage mapping (see docs/instrumentation.md): ``promptTokenCount`` already includes
``cachedContentTokenCount`` (the cache read); tool-use prompt tokens (``toolUsePromptTokenCount``) are
input too; ``candidatesTokenCount`` excludes ``thoughtsTokenCount``, so output = candidates + thoughts
and reasoning = thoughts.

A stream (SSE with ``alt=sse``, or a streamed JSON array) is a sequence of ``GenerateContentResponse``
objects whose ``usageMetadata`` is cumulative: the last one wins. Only the latest raw chunks are kept and
they are decoded once, at the end.
"""

from __future__ import annotations

import json
from typing import Any

from spanledger.instrumentation.facts import ResponseFacts, Usage, as_count

__all__ = ["GenerateContentReader", "usage_from_gemini"]


def usage_from_gemini(metadata: object) -> Usage | None:
    """Normalise a Gemini ``usageMetadata`` object."""
    if not isinstance(metadata, dict):
        return None
    prompt = as_count(metadata.get("promptTokenCount"))
    tool_prompt = as_count(metadata.get("toolUsePromptTokenCount"))
    candidates = as_count(metadata.get("candidatesTokenCount"))
    thoughts = as_count(metadata.get("thoughtsTokenCount"))
    if prompt is None and tool_prompt is None and candidates is None and thoughts is None:
        return None
    inputs = [count for count in (prompt, tool_prompt) if count is not None]
    outputs = [count for count in (candidates, thoughts) if count is not None]
    return Usage(
        input_tokens=sum(inputs) if inputs else None,
        output_tokens=sum(outputs) if outputs else None,
        cache_read_input_tokens=as_count(metadata.get("cachedContentTokenCount")),
        reasoning_output_tokens=thoughts,
    )


class GenerateContentReader:
    """Reads a ``GenerateContentResponse``, or a stream of them."""

    __slots__ = ("_facts", "_last", "_last_with_finish", "_last_with_usage")

    def __init__(self) -> None:
        self._facts = ResponseFacts()
        self._last: bytes | None = None
        self._last_with_usage: bytes | None = None
        self._last_with_finish: bytes | None = None

    def read_body(self, body: bytes) -> None:
        data = json.loads(body)
        if isinstance(data, list):  # a streamed array read in one go
            for item in data:
                if isinstance(item, dict):
                    self._read_chunk(item)
        elif isinstance(data, dict):
            self._read_chunk(data)

    def read_event(self, event: str | None, data: bytes) -> None:
        if not data:
            return
        self._last = data
        if b'"usageMetadata"' in data:
            self._last_with_usage = data
        if b'"finishReason"' in data:
            self._last_with_finish = data

    def facts(self) -> ResponseFacts:
        decoded: dict[int, Any] = {}
        for raw in (self._last_with_usage, self._last_with_finish, self._last):
            if raw is not None and id(raw) not in decoded:
                decoded[id(raw)] = json.loads(raw)
        for raw in (self._last_with_usage, self._last_with_finish, self._last):
            if raw is not None and isinstance(decoded[id(raw)], dict):
                self._read_chunk(decoded[id(raw)])
        self._last = self._last_with_usage = self._last_with_finish = None
        return self._facts

    def _read_chunk(self, chunk: dict[str, Any]) -> None:
        if isinstance(chunk.get("responseId"), str):
            self._facts.response_id = chunk["responseId"]
        if isinstance(chunk.get("modelVersion"), str):
            self._facts.response_model = chunk["modelVersion"]
        candidates = chunk.get("candidates")
        if isinstance(candidates, list):
            reasons = [
                candidate["finishReason"]
                for candidate in candidates
                if isinstance(candidate, dict) and isinstance(candidate.get("finishReason"), str)
            ]
            if reasons:
                self._facts.finish_reasons = reasons
        usage = usage_from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            self._facts.usage = usage
