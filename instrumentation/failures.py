"""The instrumentation's own failures: logged once per place, never raised into the app."""

from __future__ import annotations

import logging
import threading

__all__ = ["log_failure_once"]

_logger = logging.getLogger("spanledger.instrumentation")
_seen: set[str] = set()
_lock = threading.Lock()


def log_failure_once(where: str, exc: BaseException) -> None:
    """Log ``exc`` with its traceback the first time ``where`` fails; later failures at debug level."""
    with _lock:
        first = where not in _seen
        _seen.add(where)
    if first:
        _logger.warning(
            "spanledger instrumentation failed in %s; the call is unaffected", where, exc_info=exc
        )
    else:
        _logger.debug("spanledger instrumentation failed in %s again: %r", where, exc)
