"""Request limits, and decompression that stops at the limit instead of inflating a bomb.

Every limit is configurable (argument, else ``SPANLEDGER_*`` variable, else the default) and every refusal
says which limit was hit and how to stay under it.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from spanledger.billing.environment_variables import positive_int_from_env
from spanledger.billing.errors import ConfigurationError
from spanledger.exporter.environment_variables import (
    SPANLEDGER_MAX_ATTRIBUTE_LENGTH,
    SPANLEDGER_MAX_DECOMPRESSED_BYTES,
    SPANLEDGER_MAX_REQUEST_BYTES,
    SPANLEDGER_MAX_SPANS_PER_REQUEST,
)
from spanledger.exporter.errors import PayloadError, PayloadTooLargeError

__all__ = ["ReceiverLimits", "decompress"]


# Inflate in slices of this size, so memory stays bounded by the limit plus one slice.
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class ReceiverLimits:
    """The size limits of one export request."""

    max_request_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_spans_per_request: int = 20_000
    max_attribute_length: int = 4096

    def __post_init__(self) -> None:
        for name in (
            "max_request_bytes",
            "max_decompressed_bytes",
            "max_spans_per_request",
            "max_attribute_length",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive whole number, not {value!r}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ReceiverLimits:
        """Limits from the ``SPANLEDGER_MAX_*`` variables, defaults for the unset or invalid ones."""
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            max_request_bytes=positive_int_from_env(
                env, SPANLEDGER_MAX_REQUEST_BYTES, default.max_request_bytes
            ),
            max_decompressed_bytes=positive_int_from_env(
                env, SPANLEDGER_MAX_DECOMPRESSED_BYTES, default.max_decompressed_bytes
            ),
            max_spans_per_request=positive_int_from_env(
                env, SPANLEDGER_MAX_SPANS_PER_REQUEST, default.max_spans_per_request
            ),
            max_attribute_length=positive_int_from_env(
                env, SPANLEDGER_MAX_ATTRIBUTE_LENGTH, default.max_attribute_length
            ),
        )

    def check_request_size(self, size: int) -> None:
        """Refuse a body of ``size`` bytes (as sent) over ``max_request_bytes``."""
        if size > self.max_request_bytes:
            raise PayloadTooLargeError(
                f"request body is {size} bytes; the limit is {self.max_request_bytes} "
                f"({SPANLEDGER_MAX_REQUEST_BYTES}); send smaller batches"
            )


def decompress(body: bytes, content_encoding: str | None, limits: ReceiverLimits) -> bytes:
    """``body`` decoded per ``Content-Encoding`` (identity, gzip or deflate), never beyond the limit.

    Raises :class:`PayloadTooLargeError` as soon as the output would exceed ``max_decompressed_bytes``
    (so a gzip bomb costs at most the limit in memory), :class:`PayloadError` for a corrupt stream or an
    unsupported encoding.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limits.max_decompressed_bytes:
            raise _too_large(limits)
        return body
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        # RFC 9110's "deflate" is zlib-wrapped; some clients send raw deflate. Auto-detect zlib or gzip.
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS) if body[:1] == b"\x78" else zlib.decompressobj(-15)
    else:
        raise PayloadError(f"Content-Encoding {content_encoding!r} is not supported; use gzip or none")
    limit = limits.max_decompressed_bytes
    parts: list[bytes] = []
    produced = 0
    data = body
    try:
        while True:
            chunk = inflater.decompress(data, min(_CHUNK, limit + 1 - produced))
            produced += len(chunk)
            if produced > limit:
                raise _too_large(limits)
            parts.append(chunk)
            data = inflater.unconsumed_tail
            if inflater.eof or (not data and not chunk):
                break
        if not inflater.eof:
            raise PayloadError(f"the {encoding} body is truncated")
    except zlib.error as exc:
        raise PayloadError(f"the {encoding} body is corrupt: {exc}") from exc
    return b"".join(parts)


def _too_large(limits: ReceiverLimits) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request is larger than {limits.max_decompressed_bytes} bytes once decompressed "
        f"({SPANLEDGER_MAX_DECOMPRESSED_BYTES}); send smaller batches"
    )
