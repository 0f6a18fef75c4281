"""Wire-level shortcuts for OTLP/protobuf trace requests: each span's serialized bytes, and its attributes
read from their bytes instead of through one protobuf object per attribute.

:func:`~spanledger.exporter.otlp_decoding.decode_protobuf` parses every request with the real
``ExportTraceServiceRequest`` first, so malformed payloads are refused exactly as before. It then parses the
same payload a second time with *lean* message types built here, whose fields have the same numbers and
wire types as OTLP's but stop early: a ``ScopeSpans`` holds each span as ``bytes``, and a ``Span`` holds
each attribute (a ``KeyValue``) as ``bytes``. That second parse is almost free, and it lets the decoder

- skip a span whose bytes contain none of the candidate keys (absence of the substring proves absence of
  the key: a ``KeyValue`` key is stored as its UTF-8 bytes), without creating any protobuf object for it;
- read an attribute's key and scalar value straight from its bytes when they are encoded canonically
  (``key``, then ``value`` holding one string, bool, int or double), with a bounded cache, since the same
  provider, model, customer and counts recur on span after span.

Anything else (arrays, an empty or non-canonical encoding, a repeated field) is parsed with the real
``KeyValue`` type, so every input reads exactly as it does through the real message objects.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "AttributeReader",
    "LeanRequest",
    "LeanSpan",
    "attribute_reader",
    "contains_any",
    "key_substrings",
    "proto_value",
    "read_key_value",
]

_F = descriptor_pb2.FieldDescriptorProto
# (message, ((field, number, type, repeated, message type), ...)); numbers and wire types are OTLP's
# (opentelemetry/proto/trace/v1/trace.proto); the fields not listed are skipped by the parser.
_LEAN_MESSAGES: tuple[tuple[str, tuple[tuple[str, int, int, bool, str], ...]], ...] = (
    ("Request", (("resource_spans", 1, _F.TYPE_MESSAGE, True, "ResourceSpans"),)),
    ("ResourceSpans", (("scope_spans", 2, _F.TYPE_MESSAGE, True, "ScopeSpans"),)),
    ("ScopeSpans", (("spans", 2, _F.TYPE_BYTES, True, ""),)),
    (
        "Span",
        (
            ("trace_id", 1, _F.TYPE_BYTES, False, ""),
            ("span_id", 2, _F.TYPE_BYTES, False, ""),
            ("name", 5, _F.TYPE_STRING, False, ""),
            ("start_time_unix_nano", 7, _F.TYPE_FIXED64, False, ""),
            ("end_time_unix_nano", 8, _F.TYPE_FIXED64, False, ""),
            ("attributes", 9, _F.TYPE_BYTES, True, ""),
            ("status", 15, _F.TYPE_MESSAGE, False, "Status"),
        ),
    ),
    # StatusCode is an open enum, read as its int32 number, which is what a lean int32 reads.
    ("Status", (("code", 3, _F.TYPE_INT32, False, ""),)),
)
_PACKAGE = "spanledger.otlp_lean"


def _lean_classes() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="spanledger/otlp_lean.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _LEAN_MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, field_type, repeated, type_name in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                type=field_type,  # type: ignore[arg-type]
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()  # our own pool: nothing registered globally
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name, _ in _LEAN_MESSAGES
    }


_CLASSES = _lean_classes()
#: ``ExportTraceServiceRequest`` down to each span's serialized bytes (``resource_spans[].scope_spans[]
#: .spans[]``, bytes).
LeanRequest: Any = _CLASSES["Request"]
#: A ``Span`` with its ids, name, times, status code, and each attribute's serialized ``KeyValue`` bytes.
LeanSpan: Any = _CLASSES["Span"]

_SCALAR_KINDS = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_unpack_double = struct.Struct("<d").unpack_from

# Serialized KeyValues up to this size are remembered with what they read as; longer ones (prompts,
# payloads) are rarely repeated and would only evict the ones that are. Emptied when full: simpler than LRU,
# and the recurring ones (provider, model, operation, customer, small counts) are back within a request.
_CACHED_SIZE = 64
_CACHE_ENTRIES = 16384
# What _value returns for an encoding it leaves to the real KeyValue type.
_OTHER: Any = object()


class _Mark:
    """A value the mapping does not receive: valueless (kvlist, bytes, empty) or too long."""

    __slots__ = ()


_VALUELESS = _Mark()
_OVERSIZED = _Mark()
# The entry of a KeyValue whose key is not wanted.
_SKIP: Any = object()


def proto_value(any_value: AnyValue) -> Any:
    """An ``AnyValue`` as an attribute value: a scalar, a tuple for an array, ``None`` for the rest."""
    kind = any_value.WhichOneof("value")
    if kind in _SCALAR_KINDS:
        return getattr(any_value, kind)
    if kind == "array_value":
        return tuple(v for v in (proto_value(item) for item in any_value.array_value.values) if v is not None)
    return None  # kvlist, bytes and empty values carry nothing the mapping reads


def read_key_value(raw: bytes) -> tuple[str, Any]:
    """The key and value (as :func:`proto_value` reads it) of a serialized ``KeyValue`` that a successful
    parse of its request has already validated."""
    head = _head(raw)
    if head is not None:
        value = _value(raw, head[1])
        if value is not _OTHER:
            return head[0], value
    message = KeyValue.FromString(raw)
    return message.key, proto_value(message.value)


class AttributeReader:
    """Reads spans' serialized KeyValues into the attributes the mapping wants, as the real types read them,
    remembering what each short KeyValue came to."""

    __slots__ = ("_cache", "_candidates", "_max_length", "_wanted")

    def __init__(self, wanted: frozenset[str], candidates: frozenset[str] | None, max_length: int) -> None:
        if candidates is not None and not candidates <= wanted:
            raise ValueError("every candidate key must be a wanted key")
        self._wanted = wanted
        self._candidates = candidates
        self._max_length = max_length
        self._cache: dict[bytes, Any] = {}

    def read(self, raw_attributes: Iterable[bytes]) -> tuple[dict[str, Any], set[str] | None, bool]:
        """The wanted attributes' values (the last of a repeated key wins; valueless ones left out), the keys
        of string values longer than the limit (left out too; ``None`` when there are none), and whether one
        of the keys is a candidate (always true when there are no candidates)."""
        attributes: dict[str, Any] = {}
        oversized: set[str] | None = None
        candidate = self._candidates is None
        cached = self._cache.get
        for raw in raw_attributes:
            # Only short ones are remembered: do not hash a long one (a prompt) just to miss.
            entry = cached(raw) if len(raw) <= _CACHED_SIZE else None
            if entry is None:
                entry = self._entry(raw)
            if entry is _SKIP:
                continue
            key, value, is_candidate = entry
            if is_candidate:
                candidate = True
            if value.__class__ is _Mark:
                if value is _OVERSIZED:
                    if oversized is None:
                        oversized = set()
                    oversized.add(key)
                continue
            attributes[key] = value
        return attributes, oversized, candidate

    def _entry(self, raw: bytes) -> Any:
        """``_SKIP``, or (key, value or a mark, is a candidate); remembered when ``raw`` is short."""
        head = _head(raw)
        if head is None:
            key, value = read_key_value(raw)
        else:
            key = head[0]
            # The key first: a long attribute (a prompt, a payload) is mostly one the mapping does not read.
            value = _value(raw, head[1]) if key in self._wanted else None
            if value is _OTHER:
                key, value = read_key_value(raw)
        if key not in self._wanted:
            entry = _SKIP
        else:
            if value is None:
                value = _VALUELESS
            elif value.__class__ is str and len(value) > self._max_length:
                value = _OVERSIZED
            entry = (key, value, self._candidates is not None and key in self._candidates)
        if len(raw) <= _CACHED_SIZE:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[raw] = entry
        return entry


@lru_cache(maxsize=32)
def attribute_reader(
    wanted: frozenset[str], candidates: frozenset[str] | None, max_length: int
) -> AttributeReader:
    """The reader for these keys and limit, shared (and so its memory of KeyValues) by every request."""
    return AttributeReader(wanted, candidates, max_length)


def _head(raw: bytes) -> tuple[str, int] | None:
    """The key of ``0x0a len key 0x12 len AnyValue`` filling ``raw`` exactly, and where the AnyValue starts;
    ``None`` for any other layout (a missing or repeated field, an unknown one, a long key).

    Lengths are read as one-byte varints for the key (under 128 bytes) and up to two for the value (16 KiB).
    """
    size = len(raw)
    if size < 5 or raw[0] != 0x0A or raw[1] > 0x7F:
        return None
    end = 2 + raw[1]
    if end + 2 >= size or raw[end] != 0x12:
        return None
    length = raw[end + 1]
    start = end + 2
    if length > 0x7F:
        if raw[start] > 0x7F:
            return None
        length = (length & 0x7F) | (raw[start] << 7)
        start += 1
    if start + length != size or length == 0:
        return None
    try:
        return raw[2:end].decode(), start
    except UnicodeDecodeError:  # the real parse refused it already; let the real type say the same
        return None


def _value(raw: bytes, start: int) -> Any:
    """The AnyValue ``raw[start:]`` when it is one string, bool, int (non-negative) or double field, else
    :data:`_OTHER`."""
    size = len(raw)
    tag = raw[start]
    if tag == 0x18:  # int_value; a varint of at most 9 bytes is below 2**63, so never negative
        varint_size = size - start - 1
        if varint_size == 1:
            byte = raw[start + 1]
            return byte if byte < 0x80 else _OTHER
        if varint_size == 2:  # the usual token count: 128 to 16383
            low, high = raw[start + 1], raw[start + 2]
            return (low & 0x7F) | (high << 7) if low > 0x7F and high < 0x80 else _OTHER
        value = 0
        shift = 0
        for position in range(start + 1, min(size, start + 10)):
            byte = raw[position]
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value if position + 1 == size else _OTHER
        return _OTHER
    if tag == 0x0A:  # string_value
        if size - start < 2:
            return _OTHER
        length = raw[start + 1]
        position = start + 2
        if length > 0x7F:
            if position >= size or raw[position] > 0x7F:
                return _OTHER
            length = (length & 0x7F) | (raw[position] << 7)
            position += 1
        if position + length != size:
            return _OTHER
        try:
            return raw[position:].decode()
        except UnicodeDecodeError:
            return _OTHER
    if tag == 0x10:  # bool_value
        if size - start == 2 and raw[start + 1] < 2:
            return raw[start + 1] == 1
        return _OTHER
    if tag == 0x21 and size - start == 9:  # double_value
        return _unpack_double(raw, start + 1)[0]
    return _OTHER


@lru_cache(maxsize=32)
def key_substrings(keys: frozenset[str]) -> tuple[bytes, ...]:
    """Byte strings such that every key in ``keys`` contains one of them: each key's part up to its first
    dot (``gen_ai.``, ``llm.``). Bytes containing none of them contain none of the keys."""
    parts = {key[: key.index(".") + 1] if "." in key else key for key in keys}
    # A part that contains another is redundant: the shorter one is found wherever the longer one is.
    kept = {part for part in parts if not any(other != part and other in part for other in parts)}
    return tuple(sorted(part.encode() for part in kept))


def contains_any(substrings: tuple[bytes, ...]) -> Callable[[bytes], bool]:
    """A test ``data → does it contain one of substrings``, specialised for the usual one or two."""
    if len(substrings) == 1:
        (first,) = substrings
        return lambda data: first in data
    if len(substrings) == 2:
        first, second = substrings
        return lambda data: first in data or second in data
    return lambda data: any(part in data for part in substrings)
