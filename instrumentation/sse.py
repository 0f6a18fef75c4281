"""An incremental Server-Sent Events reader over raw bytes.

Bytes are fed as they arrive; each complete event (terminated by a blank line, with ``\\n``, ``\\r\\n``
or ``\\r`` line endings) comes back with its ``event`` name, its joined ``data`` and its exact raw
bytes, so a caller can pass the event on unchanged. Only the unfinished tail is kept in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEReader"]

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# The longest terminator minus one: a terminator split across two chunks starts at most this far back.
_OVERLAP = 3


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event: ``event`` is ``None`` when the event had no ``event:`` field."""

    event: str | None
    data: bytes
    raw: bytes


class SSEReader:
    """Splits a byte stream into :class:`SSEEvent` objects."""

    __slots__ = ("_buffer", "_scan_from")

    def __init__(self) -> None:
        self._buffer = b""
        self._scan_from = 0

    @property
    def idle(self) -> bool:
        """True when no partial event is buffered (the next byte starts a new event)."""
        return not self._buffer

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add ``chunk`` and return the events it completed (possibly none)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        match = _EVENT_END.search(buffer, self._scan_from)
        while match is not None:
            end = match.end()
            events.append(parse_event(buffer[start:end]))
            start = end
            match = _EVENT_END.search(buffer, start)
        self._buffer = buffer[start:]
        self._scan_from = max(0, len(self._buffer) - _OVERLAP)
        return events

    def flush(self) -> tuple[list[SSEEvent], bytes]:
        """At end of stream: the last event if it lacked its blank line, and the raw bytes left over."""
        rest, self._buffer, self._scan_from = self._buffer, b"", 0
        if not rest.strip():
            return [], rest
        event = parse_event(rest)
        return ([event] if event.data or event.event else []), rest


def parse_event(raw: bytes) -> SSEEvent:
    """Parse the fields of one raw event (comments and unknown fields are ignored)."""
    if raw.startswith(b"data:") and raw.endswith(b"\n\n") and raw.count(b"\n") == 2 and b"\r" not in raw:
        # The usual shape, one ``data:`` line: skip the general line splitting.
        value = raw[5:-2]
        return SSEEvent(None, value[1:] if value.startswith(b" ") else value, raw)
    name: str | None = None
    data_lines: list[bytes] = []
    for line in _LINE_END.split(raw):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    return SSEEvent(name, b"\n".join(data_lines), raw)
