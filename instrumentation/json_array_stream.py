"""An incremental reader of a streamed JSON array (``[{...},{...}]``), as Gemini sends without ``alt=sse``.

Returns the raw bytes of each complete top-level element as soon as its closing brace arrives, tracking
only nesting depth and string state, so memory is bounded by the largest single element.
"""

from __future__ import annotations

import re

__all__ = ["JSONArrayReader"]

_STRUCTURAL = re.compile(rb'[{}\[\]"\\]')


class JSONArrayReader:
    """Splits a streamed top-level JSON array into its elements' raw bytes."""

    __slots__ = ("_buffer", "_depth", "_element_start", "_escaped", "_in_string", "_scanned")

    def __init__(self) -> None:
        self._buffer = b""
        self._scanned = 0
        self._depth = 0  # 1 = inside the top-level array
        self._in_string = False
        self._escaped = False
        self._element_start: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk`` and return the elements it completed."""
        self._buffer += chunk
        elements: list[bytes] = []
        buffer = self._buffer
        position = self._scanned
        if self._escaped and position < len(buffer):
            # The previous chunk ended on a backslash inside a string: this byte is the escaped one.
            self._escaped = False
            position += 1
        while True:
            match = _STRUCTURAL.search(buffer, position)
            if match is None:
                break
            index = match.start()
            char = buffer[index : index + 1]
            position = index + 1
            if self._in_string:
                if char == b"\\":
                    # The escaped character may itself be structural (\" or \\): skip it explicitly.
                    if position < len(buffer):
                        position += 1
                    else:
                        self._escaped = True
                        break
                elif char == b'"':
                    self._in_string = False
                continue
            if char == b'"':
                self._in_string = True
            elif char in (b"{", b"["):
                if self._depth == 1:
                    self._element_start = index
                self._depth += 1
            elif char in (b"}", b"]"):
                self._depth -= 1
                if self._depth == 1 and self._element_start is not None:
                    elements.append(buffer[self._element_start : index + 1])
                    self._element_start = None
        self._scanned = position
        if self._element_start is None:
            # Nothing unfinished to keep: drop what was scanned so memory stays bounded.
            self._buffer = buffer[position:]
            self._scanned = 0
        elif self._element_start > 0:
            self._buffer = buffer[self._element_start :]
            self._scanned -= self._element_start
            self._element_start = 0
        return elements
