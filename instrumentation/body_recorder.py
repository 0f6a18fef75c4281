"""Watches one response body on its way to the app and ends the call's span when the body ends.

The body is never held back: each chunk is handed on as it arrives, and a copy is parsed incrementally
(SSE events, streamed JSON array elements) or, for a plain JSON body, kept until it is complete. The one
exception is an OpenAI chat stream whose request was rewritten to ask for usage: there, bytes are handed
on event by event so that the extra usage-only event can be removed, and ``"usage":null`` members
dropped, leaving the app exactly the stream it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanledger.instrumentation.call_span import GenAICall, error_type_of
from spanledger.instrumentation.facts import CallSpec, ResponseFacts, ResponseReader
from spanledger.instrumentation.failures import log_failure_once
from spanledger.instrumentation.json_array_stream import JSONArrayReader
from spanledger.instrumentation.sse import SSEReader
from spanledger.instrumentation.wire_openai import (
    is_usage_only_chunk,
    remove_all_null_usage,
    remove_null_usage,
)

__all__ = ["MAX_JSON_BODY_BYTES", "BodyRecorder", "body_mode", "facts_from_complete_body"]

#: A non-streamed JSON body larger than this is not kept for usage extraction (the span is then
#: flagged as missing usage). No LLM response the instrumentation recognises comes near it.
MAX_JSON_BODY_BYTES = 64 * 1024 * 1024


def body_mode(spec: CallSpec, content_type: str | None) -> str:
    """``"sse"``, ``"json_array"`` (Gemini streamed JSON) or ``"json"``."""
    if content_type and "text/event-stream" in content_type.lower():
        return "sse"
    if spec.streaming and spec.operation == "generate_content":
        return "json_array"
    return "json"


def facts_from_complete_body(reader: ResponseReader, mode: str, content: bytes) -> ResponseFacts:
    """The facts of a body that was read in full by the client (``send(stream=False)``)."""
    if mode == "json":
        reader.read_body(content)
    elif mode == "sse":
        sse = SSEReader()
        events = sse.feed(content)
        events.extend(sse.flush()[0])
        for event in events:
            reader.read_event(event.event, event.data)
    else:
        for element in JSONArrayReader().feed(content):
            reader.read_event(None, element)
    return reader.facts()


class BodyRecorder:
    """Feeds a streamed body to a wire-format reader; see the module docstring. Never raises."""

    __slots__ = (
        "_array",
        "_broken",
        "_call",
        "_can_skip",
        "_decoder",
        "_finished",
        "_json_parts",
        "_json_size",
        "_mode",
        "_reader",
        "_sse",
        "_strip",
    )

    def __init__(
        self,
        call: GenAICall,
        spec: CallSpec,
        headers: Mapping[str, str],
        strip_usage_chunk: bool,
        decoders: Mapping[str, Any] | None,
    ) -> None:
        self._call = call
        self._reader = spec.new_reader()
        self._mode = body_mode(spec, headers.get("content-type"))
        self._finished = False
        self._broken = False
        self._json_parts: list[bytes] = []
        self._json_size = 0
        self._sse = SSEReader() if self._mode == "sse" else None
        self._array = JSONArrayReader() if self._mode == "json_array" else None
        try:
            self._decoder = _content_decoder(headers.get("content-encoding"), decoders)
        except ValueError as exc:
            self._decoder = None
            self._break("decoding the response", exc)
        self._strip = strip_usage_chunk and self._mode == "sse" and self._decoder is None and not self._broken
        # Readers that can tell from the raw bytes that whole events hold nothing for them (OpenAI chat
        # content chunks) let an uncompressed SSE chunk of whole events skip the event-by-event path.
        can_skip = getattr(self._reader, "can_skip_events", None)
        self._can_skip = can_skip if self._mode == "sse" and self._decoder is None else None
        if strip_usage_chunk and not self._strip:
            log_failure_once(
                "filtering the usage chunk",
                RuntimeError(
                    "the server compressed or did not stream the response although it was asked not to; "
                    "the extra usage chunk reaches the app"
                ),
            )

    def feed(self, chunk: bytes) -> bytes:
        """Take one raw chunk; return the bytes to hand to the app (the chunk itself unless filtering)."""
        if self._broken or not chunk:
            return chunk
        if self._can_skip is not None and self._skippable(chunk):
            return remove_all_null_usage(chunk) if self._strip else chunk
        if self._strip:
            return self._feed_filtering(chunk)
        try:
            data = _joined(self._decoder.decode(chunk)) if self._decoder is not None else chunk
            self._parse(data)
        except Exception as exc:
            self._break("reading the response stream", exc)
        return chunk

    def end_of_body(self) -> bytes:
        """The body ended normally: process what is left; return bytes still owed to the app."""
        if self._broken:
            return b""
        rest = b""
        try:
            if self._decoder is not None:
                self._parse(_joined(self._decoder.flush()))
            if self._sse is not None:
                events, rest = self._sse.flush()
                for event in events:
                    self._reader.read_event(event.event, event.data)
        except Exception as exc:
            self._break("reading the end of the response stream", exc)
        # When filtering, the unterminated tail was held back and is still owed to the app.
        return rest if self._strip else b""

    def finish(self, error: BaseException | None = None) -> None:
        """End the span: after the last chunk, on close, on abandonment, or with the stream's error."""
        if self._finished:
            return
        self._finished = True
        facts = None
        if not self._broken:
            try:
                if self._mode == "json":
                    if self._json_parts and error is None:
                        self._reader.read_body(b"".join(self._json_parts))
                        facts = self._reader.facts()
                else:
                    facts = self._reader.facts()
            except Exception as exc:
                log_failure_once("reading the response body", exc)
                facts = None
        self._json_parts = []
        self._call.end(facts, error_type=error_type_of(error) if error is not None else None)

    def abandon(self) -> None:
        """The stream was garbage-collected without being closed."""
        self.finish(None)

    def _parse(self, data: bytes) -> None:
        if not data:
            return
        if self._sse is not None:
            for event in self._sse.feed(data):
                self._reader.read_event(event.event, event.data)
        elif self._array is not None:
            for element in self._array.feed(data):
                self._reader.read_event(None, element)
        else:
            self._json_size += len(data)
            if self._json_size > MAX_JSON_BODY_BYTES:
                raise ValueError(f"JSON body exceeds {MAX_JSON_BODY_BYTES} bytes")
            self._json_parts.append(data)

    def _skippable(self, chunk: bytes) -> bool:
        """Whole ``\n``-terminated events after an event boundary, none of them of use to the reader."""
        assert self._sse is not None and self._can_skip is not None
        try:
            return (
                self._sse.idle
                and chunk.endswith(b"\n\n")
                and b"\r" not in chunk
                and bool(self._can_skip(chunk))
            )
        except Exception as exc:
            log_failure_once("reading the response stream", exc)
            return False

    def _feed_filtering(self, chunk: bytes) -> bytes:
        assert self._sse is not None
        out: list[bytes] = []
        for event in self._sse.feed(chunk):
            try:
                if is_usage_only_chunk(event.data):
                    self._reader.read_event(event.event, event.data)
                    continue
                self._reader.read_event(event.event, event.data)
                out.append(remove_null_usage(event.raw))
            except Exception as exc:
                log_failure_once("filtering the response stream", exc)
                out.append(event.raw)
        return b"".join(out)

    def _break(self, where: str, exc: BaseException) -> None:
        log_failure_once(where, exc)
        self._broken = True
        self._json_parts = []


def _content_decoder(encoding: str | None, decoders: Mapping[str, Any] | None) -> Any:
    """A decoder for a compressed body, from the client library's own table, or ``None`` for identity."""
    if not encoding:
        return None
    names = [name.strip().lower() for name in encoding.split(",") if name.strip().lower() != "identity"]
    if not names:
        return None
    if len(names) != 1 or decoders is None or names[0] not in decoders:
        raise ValueError(f"unsupported content-encoding {encoding!r}")
    return decoders[names[0]]()


def _joined(decoded: Any) -> bytes:
    """httpx decoders return bytes, httpx2 decoders an iterator of bytes."""
    return decoded if isinstance(decoded, bytes) else b"".join(decoded)
