"""Byte-stream wrappers that put a :class:`BodyRecorder` between a response body and the app.

httpx and httpx2 check ``isinstance(response.stream, SyncByteStream)`` (or the async base), so the
wrapper classes are built once per library from that library's own base classes.

The span ends when the body is exhausted, when the stream is closed, when iteration fails (with the
error's type), or when the stream is garbage-collected unread (``weakref.finalize``).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from spanledger.instrumentation.body_recorder import BodyRecorder

__all__ = ["recording_stream_classes"]


def recording_stream_classes(module: ModuleType) -> tuple[type[Any], type[Any]]:
    """The (sync, async) recording stream classes for ``module`` (``httpx`` or ``httpx2``)."""

    class RecordingSyncStream(module.SyncByteStream):  # type: ignore[name-defined,misc]
        """Hands each chunk of ``inner`` to the app after showing it to the recorder."""

        def __init__(self, inner: Any, recorder: BodyRecorder) -> None:
            self._inner = inner
            self._recorder = recorder
            weakref.finalize(self, recorder.abandon)

        def __iter__(self) -> Iterator[bytes]:
            recorder = self._recorder
            try:
                for chunk in self._inner:
                    out = recorder.feed(chunk)
                    if out:
                        yield out
                tail = recorder.end_of_body()
                if tail:
                    yield tail
            except GeneratorExit:
                recorder.finish(None)
                raise
            except BaseException as exc:
                recorder.finish(exc)
                raise
            recorder.finish(None)

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._recorder.finish(None)

    class RecordingAsyncStream(module.AsyncByteStream):  # type: ignore[name-defined,misc]
        """Async twin of ``RecordingSyncStream``."""

        def __init__(self, inner: Any, recorder: BodyRecorder) -> None:
            self._inner = inner
            self._recorder = recorder
            weakref.finalize(self, recorder.abandon)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            recorder = self._recorder
            try:
                async for chunk in self._inner:
                    out = recorder.feed(chunk)
                    if out:
                        yield out
                tail = recorder.end_of_body()
                if tail:
                    yield tail
            except GeneratorExit:
                recorder.finish(None)
                raise
            except BaseException as exc:
                recorder.finish(exc)
                raise
            recorder.finish(None)

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._recorder.finish(None)

    return RecordingSyncStream, RecordingAsyncStream
