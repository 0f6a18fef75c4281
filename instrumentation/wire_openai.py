"""OpenAI's wire format (and every OpenAI-compatible server): chat completions, legacy completions,
Responses, embeddings.

Usage mapping (see docs/instrumentation.md):

- chat completions: ``prompt_tokens`` → input (includes ``prompt_tokens_details.cached_tokens``, the
  cache read, and ``prompt_tokens_details.cache_write_tokens``, the cache write, which some
  OpenAI-compatible servers report); ``completion_tokens`` → output (includes
  ``completion_tokens_details.reasoning_tokens``).
- legacy completions (``/v1/completions``, ``text_completion`` objects): the same ``usage`` object
  as chat completions, read the same way.
- Responses: ``input_tokens`` (includes ``input_tokens_details.cached_tokens``), ``output_tokens``
  (includes ``output_tokens_details.reasoning_tokens``).
- embeddings: ``prompt_tokens`` → input; no output tokens.

Chat (and legacy completion) streams only carry usage when the request set
``stream_options.include_usage``; the request rewrite and the chunk filtering that keep this invisible
to the app live here too.
"""

from __future__ import annotations

import json
from typing import Any

from spanledger.instrumentation.facts import ResponseFacts, Usage, as_count

__all__ = [
    "ChatCompletionsReader",
    "EmbeddingsReader",
    "ResponsesReader",
    "TextCompletionsReader",
    "add_include_usage",
    "is_usage_only_chunk",
    "remove_all_null_usage",
    "remove_null_usage",
    "usage_from_chat",
    "usage_from_responses",
]

_NULL_USAGE = (b',"usage":null', b'"usage":null,', b', "usage": null', b'"usage": null, ')
_RESPONSE_END_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def usage_from_chat(usage: object) -> Usage | None:
    """Normalise a chat-completions (or embeddings) ``usage`` object."""
    if not isinstance(usage, dict):
        return None
    input_tokens = as_count(usage.get("prompt_tokens"))
    output_tokens = as_count(usage.get("completion_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=(
            as_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
        ),
        cache_creation_input_tokens=(
            as_count(prompt_details.get("cache_write_tokens")) if isinstance(prompt_details, dict) else None
        ),
        reasoning_output_tokens=(
            as_count(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, dict)
            else None
        ),
    )


def usage_from_responses(usage: object) -> Usage | None:
    """Normalise a Responses-API ``usage`` object."""
    if not isinstance(usage, dict):
        return None
    input_tokens = as_count(usage.get("input_tokens"))
    output_tokens = as_count(usage.get("output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=(
            as_count(input_details.get("cached_tokens")) if isinstance(input_details, dict) else None
        ),
        reasoning_output_tokens=(
            as_count(output_details.get("reasoning_tokens")) if isinstance(output_details, dict) else None
        ),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class ChatCompletionsReader:
    """Reads a chat-completions response: one JSON object, or a stream of ``chat.completion.chunk``."""

    __slots__ = ("_facts", "_finish_by_choice", "_seen_first")

    def __init__(self) -> None:
        self._facts = ResponseFacts()
        self._finish_by_choice: dict[int, str] = {}
        self._seen_first = False

    def read_body(self, body: bytes) -> None:
        data = json.loads(body)
        if not isinstance(data, dict):
            return
        self._read_envelope(data)
        self._read_choices(data.get("choices"))
        self._facts.usage = usage_from_chat(data.get("usage"))

    def read_event(self, event: str | None, data: bytes) -> None:
        if data == b"[DONE]" or not data:
            return
        if self._seen_first:
            # Fast path for the common content chunk: no finish reason, no usage object.
            if (b'"finish_reason":null' in data or b'"finish_reason": null' in data) and (
                b'"usage"' not in data or b'"usage":null' in data or b'"usage": null' in data
            ):
                return
            if not _worth_parsing(data):
                return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            return
        self._seen_first = True
        self._read_envelope(chunk)
        self._read_choices(chunk.get("choices"))
        usage = usage_from_chat(chunk.get("usage"))
        if usage is not None:
            self._facts.usage = usage

    def can_skip_events(self, raw: bytes) -> bool:
        """Whether whole events ``raw`` (one or more) hold nothing for this reader, so need no parsing.

        True once the first chunk (id, model) was read, when no event has a usage object or a finish
        reason: the content chunks that make up almost all of a stream.
        """
        if not self._seen_first:
            return False
        usages = raw.count(b'"usage"')
        if usages and usages != raw.count(b'"usage":null') + raw.count(b'"usage": null'):
            return False
        finishes = raw.count(b'"finish_reason"')
        return finishes == raw.count(b'"finish_reason":null') + raw.count(b'"finish_reason": null')

    def facts(self) -> ResponseFacts:
        self._facts.finish_reasons = [self._finish_by_choice[i] for i in sorted(self._finish_by_choice)]
        return self._facts

    def _read_envelope(self, data: dict[str, Any]) -> None:
        self._facts.response_id = _text(data.get("id")) or self._facts.response_id
        self._facts.response_model = _text(data.get("model")) or self._facts.response_model

    def _read_choices(self, choices: object) -> None:
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            reason = _text(choice.get("finish_reason"))
            if reason is not None:
                index = choice.get("index")
                self._finish_by_choice[index if isinstance(index, int) else position] = reason


class TextCompletionsReader(ChatCompletionsReader):
    """Reads a legacy completions response (``text_completion`` objects, streamed or not).

    Its envelope, ``choices[].finish_reason`` and ``usage`` (including the usage-only chunk a stream
    sends with ``stream_options.include_usage``) have the chat-completions shape; only the choice
    content differs (``text`` instead of ``message``/``delta``), and no content is read.
    """

    __slots__ = ()


def _worth_parsing(data: bytes) -> bool:
    """Whether a later chunk can carry facts: a usage object or a non-null finish reason."""
    if b'"usage"' in data and b'"usage":null' not in data and b'"usage": null' not in data:
        return True
    finishes = data.count(b'"finish_reason"')
    return finishes > data.count(b'"finish_reason":null') + data.count(b'"finish_reason": null')


def is_usage_only_chunk(data: bytes) -> bool:
    """Whether ``data`` is the extra chunk ``include_usage`` adds: empty ``choices`` and a usage object."""
    if b'"choices":[]' not in data and b'"choices": []' not in data:
        return False
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)


def remove_null_usage(raw: bytes) -> bytes:
    """Drop the ``"usage":null`` member ``include_usage`` adds to every other chunk (bytes otherwise kept).

    A quoted key can only appear unescaped at object level in JSON, so the match cannot hit content.
    """
    if b'"usage"' not in raw:
        return raw
    for pattern in _NULL_USAGE:
        if pattern in raw:
            return raw.replace(pattern, b"", 1)
    return raw


def remove_all_null_usage(raw: bytes) -> bytes:
    """:func:`remove_null_usage` for several whole events at once (each has at most one such member)."""
    if b'"usage"' not in raw:
        return raw
    for pattern in _NULL_USAGE:
        raw = raw.replace(pattern, b"")
    return raw


def add_include_usage(body: dict[str, Any]) -> bytes | None:
    """The request body with ``stream_options.include_usage`` set, or ``None`` if it is already set."""
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return None
    if options is not None and not isinstance(options, dict):
        return None
    rewritten = dict(body)
    rewritten["stream_options"] = {**(options or {}), "include_usage": True}
    return json.dumps(rewritten, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ResponsesReader:
    """Reads a Responses-API response: one ``response`` object, or its event stream."""

    __slots__ = ("_facts",)

    def __init__(self) -> None:
        self._facts = ResponseFacts()

    def read_body(self, body: bytes) -> None:
        data = json.loads(body)
        if isinstance(data, dict):
            self._read_response(data)

    def read_event(self, event: str | None, data: bytes) -> None:
        if event is None:
            # Servers that omit the SSE ``event:`` line still put the type in the data.
            if b'"usage"' not in data and b"response.created" not in data:
                return
        elif event not in _RESPONSE_END_EVENTS and event != "response.created":
            return
        payload = json.loads(data)
        if isinstance(payload, dict) and isinstance(payload.get("response"), dict):
            self._read_response(payload["response"])

    def facts(self) -> ResponseFacts:
        return self._facts

    def _read_response(self, response: dict[str, Any]) -> None:
        self._facts.response_id = _text(response.get("id")) or self._facts.response_id
        self._facts.response_model = _text(response.get("model")) or self._facts.response_model
        status = _text(response.get("status"))
        details = response.get("incomplete_details")
        reason = _text(details.get("reason")) if isinstance(details, dict) else None
        if status is not None and status not in ("in_progress", "queued"):
            self._facts.finish_reasons = [reason or status]
        usage = usage_from_responses(response.get("usage"))
        if usage is not None:
            self._facts.usage = usage


class EmbeddingsReader:
    """Reads an embeddings response, decoding only its ``usage`` and ``model`` members when it can.

    Embedding bodies can be megabytes of vectors, so the two small members are decoded on their own
    when they can be found; otherwise the whole body is parsed.
    """

    __slots__ = ("_facts",)

    def __init__(self) -> None:
        self._facts = ResponseFacts()

    def read_body(self, body: bytes) -> None:
        usage_value = _member_near_end(body, b'"usage"')
        model_value = _member_near_end(body, b'"model"')
        if usage_value is None:
            data = json.loads(body)
            if not isinstance(data, dict):
                return
            usage_value, model_value = data.get("usage"), data.get("model")
        self._facts.usage = usage_from_chat(usage_value)
        self._facts.response_model = _text(model_value)

    def read_event(self, event: str | None, data: bytes) -> None:
        """Embeddings are never streamed; a stray event is ignored."""

    def facts(self) -> ResponseFacts:
        return self._facts


_DECODER = json.JSONDecoder()


def _member_near_end(body: bytes, key: bytes) -> Any:
    """Decode the value of the last ``key`` member, or ``None`` when there is none.

    Embedding items hold only numbers or base64 text, neither of which can contain a quoted key, so
    the last occurrence is the top-level member.
    """
    position = body.rfind(key)
    if position < 0:
        return None
    colon = body.find(b":", position + len(key))
    if colon < 0:
        return None
    try:
        value, _ = _DECODER.raw_decode(body[colon + 1 :].decode("utf-8").lstrip())
    except ValueError:
        return None
    return value
