"""Group commit: many concurrent export requests share one transaction, and each is answered after it.

Receivers call :meth:`GroupCommitter.submit` with a request's events and wait on the returned future. One
committer thread takes the first waiting submission, gathers more until ``max_batch_events``, stores them all
with one :func:`~spanledger.billing.ingest.ingest` call and one commit, then resolves every future. So
throughput does not hinge on one commit per request, and a request is acknowledged only once its events are
durable.

The committer waits for more only while a request is on its way: receivers announce each request as it
starts decoding (:meth:`GroupCommitter.arriving`), and the wait ends when none is (or after
``max_wait_seconds``). So a lone request is committed at once, and under load a transaction carries the
requests that were being decoded meanwhile, which spreads its fixed cost over more events.

Memory is bounded: events waiting for a commit never exceed ``max_pending_events``; past that ``submit``
raises :class:`~spanledger.exporter.errors.ReceiverBusyError` (answered "retry later"), and nothing that was
acknowledged is ever dropped.

Failures: when the database is down or locked every future of the batch fails with
:class:`~spanledger.billing.errors.StorageUnavailableError` (retryable; nothing was committed). Any other
error retries each submission in a transaction of its own, so one poisoned request cannot fail its
neighbours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from spanledger.billing.errors import ConfigurationError, StorageUnavailableError
from spanledger.billing.ingest import IngestResult, RejectedEvent, ingest
from spanledger.billing.usage_event import UsageEvent
from spanledger.exporter.errors import ReceiverBusyError, ReceiverClosedError

__all__ = ["CommitOutcome", "GroupCommitter", "IngestFunction"]

_log = logging.getLogger(__name__)

IngestFunction = Callable[..., IngestResult]


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What happened to one submission: how many events are in the ledger, and the rejected ones
    (``index`` relative to the submission)."""

    accepted: int
    rejected: tuple[RejectedEvent, ...] = ()


@dataclass(slots=True)
class _Submission:
    events: Sequence[UsageEvent]
    future: Future[CommitOutcome]


class GroupCommitter:
    """One committer thread that group-commits submissions; see the module docstring."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        max_batch_events: int = 5000,
        max_wait_seconds: float = 0.005,
        max_pending_events: int = 100_000,
        ingest_function: IngestFunction = ingest,
        events_validated: bool = False,
    ) -> None:
        """``events_validated``: every submitted event has passed ``validate_event`` (the receivers map
        spans to validated events), so ingest need not validate them again."""
        if max_batch_events <= 0 or max_pending_events <= 0 or max_wait_seconds < 0:
            raise ConfigurationError("group commit sizes must be positive and the wait not negative")
        self._session_factory = session_factory
        self._max_batch_events = max_batch_events
        self._max_wait = max_wait_seconds
        self._max_pending = max_pending_events
        self._ingest = ingest_function
        self._events_validated = events_validated
        self._queue: deque[_Submission] = deque()
        self._pending_events = 0
        self._arriving = 0  # requests announced by arriving() and not yet submitted
        self._condition = threading.Condition()
        self._closed = False
        # Counters of what was committed (logged at shutdown: how well commits are shared).
        self.batches_committed = 0
        self.submissions_committed = 0
        self.events_committed = 0
        self._thread = threading.Thread(target=self._run, name="spanledger-group-commit", daemon=True)
        self._thread.start()

    @property
    def pending_events(self) -> int:
        """Events submitted and not yet committed (or failed)."""
        return self._pending_events

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Announce a request that is being decoded and will be submitted inside this block, so the
        committer waits for it (up to ``max_wait_seconds``) instead of committing without it."""
        with self._condition:
            self._arriving += 1
        try:
            yield
        finally:
            with self._condition:
                self._arriving -= 1
                self._condition.notify()

    def submit(self, events: Sequence[UsageEvent]) -> Future[CommitOutcome]:
        """Queue ``events`` for the next group commit; the future resolves after the commit.

        Raises :class:`ReceiverBusyError` when the queue is full and :class:`ReceiverClosedError` after
        :meth:`close`. An empty submission resolves at once.
        """
        future: Future[CommitOutcome] = Future()
        if not events:
            future.set_result(CommitOutcome(0))
            return future
        with self._condition:
            if self._closed:
                raise ReceiverClosedError("the receiver is shutting down; retry")
            # A single request larger than the whole queue is still let in when the queue is empty.
            if self._pending_events and self._pending_events + len(events) > self._max_pending:
                raise ReceiverBusyError(
                    f"{self._pending_events} events are waiting for a commit (limit {self._max_pending}); "
                    "retry later"
                )
            self._queue.append(_Submission(events, future))
            self._pending_events += len(events)
            self._condition.notify()
        return future

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting, commit everything already queued, and stop the thread.

        Returns ``False`` if the queue was not drained within ``timeout`` seconds.
        """
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the committer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._commit(batch)
            finally:
                with self._condition:
                    self._pending_events -= sum(len(s.events) for s in batch)

    def _next_batch(self) -> list[_Submission] | None:
        with self._condition:
            while not self._queue:
                if self._closed:
                    return None
                self._condition.wait()
            batch = [self._queue.popleft()]
            size = len(batch[0].events)
            deadline = time.monotonic() + self._max_wait
            while size < self._max_batch_events:
                if not self._queue:
                    if not self._arriving:
                        break  # nothing on its way: waiting would only delay the answers
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        break
                    self._condition.wait(remaining)
                    continue
                if size + len(self._queue[0].events) > self._max_batch_events:
                    break
                submission = self._queue.popleft()
                batch.append(submission)
                size += len(submission.events)
            return batch

    def _commit(self, batch: list[_Submission]) -> None:
        events = [event for submission in batch for event in submission.events]
        try:
            result = self._store(events)
        except StorageUnavailableError as exc:
            for submission in batch:
                submission.future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _log.exception("could not store an export request")
                batch[0].future.set_exception(_as_retryable(exc))
                return
            _log.warning(
                "group commit of %d requests failed (%s); committing them one by one", len(batch), exc
            )
            for submission in batch:
                self._commit([submission])
            return
        self.batches_committed += 1
        self.submissions_committed += len(batch)
        self.events_committed += len(events)
        self._resolve(batch, result)

    def _store(self, events: list[UsageEvent]) -> IngestResult:
        with self._session_factory() as session:
            try:
                result = self._ingest(session, events, received_at=_now(), validated=self._events_validated)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return result

    @staticmethod
    def _resolve(batch: list[_Submission], result: IngestResult) -> None:
        rejected_by_submission: list[list[RejectedEvent]] = [[] for _ in batch]
        starts: list[int] = []
        offset = 0
        for submission in batch:
            starts.append(offset)
            offset += len(submission.events)
        for rejected in result.rejected:
            position = _position(starts, rejected.index)
            local = RejectedEvent(rejected.index - starts[position], rejected.dedupe_key, rejected.reason)
            rejected_by_submission[position].append(local)
        for submission, rejected in zip(batch, rejected_by_submission, strict=True):
            submission.future.set_result(
                CommitOutcome(len(submission.events) - len(rejected), tuple(rejected))
            )


def _position(starts: list[int], index: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= index:
            low = middle
        else:
            high = middle - 1
    return low


def _as_retryable(exc: Exception) -> Exception:
    """Errors of the storage side keep the client's data: a missing schema, say, is fixed by the operator."""
    if isinstance(exc, ConfigurationError):
        return StorageUnavailableError(f"the ledger cannot store events: {exc}")
    return exc


def _now() -> datetime:
    return datetime.now(UTC)
