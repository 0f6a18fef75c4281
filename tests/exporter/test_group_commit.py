"""GroupCommitter on its own: which submissions share a transaction, and when it waits for more.

A fake session and ingest function stand in for the ledger (the receivers' tests cover the real one), so
these tests see exactly which events each transaction carried.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from spanledger.billing.ingest import IngestResult
from spanledger.billing.usage_event import UsageEvent
from spanledger.exporter.errors import ReceiverClosedError
from spanledger.exporter.group_commit import GroupCommitter

# Far longer than any test runs: a committer that waited this long would fail the test's timeout instead.
_LONG_WAIT = 600.0
_TIMEOUT = 30.0


class _Session:
    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        return None


class _RecordingIngest:
    """Records the events of each transaction; ``gate`` (when set up) holds the first one."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.entered = threading.Event()
        self.gate: threading.Event | None = None

    def __call__(self, session: object, events: Sequence[UsageEvent], **_: object) -> IngestResult:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(_TIMEOUT)
            self.gate = None
        self.transactions.append([event.dedupe_key for event in events])
        return IngestResult(inserted=len(events))


def _event(key: str) -> UsageEvent:
    return UsageEvent(
        dedupe_key=key,
        event_name="gen_ai.chat",
        customer_external_id="acme",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


@pytest.fixture
def recording() -> _RecordingIngest:
    return _RecordingIngest()


def _committer(recording: _RecordingIngest, max_wait: float = _LONG_WAIT) -> GroupCommitter:
    return GroupCommitter(
        _Session, ingest_function=recording, max_wait_seconds=max_wait, events_validated=True
    )


def test_a_lone_request_is_committed_without_waiting_for_others(recording):
    committer = _committer(recording)
    try:
        outcome = committer.submit([_event("a")]).result(timeout=_TIMEOUT)
    finally:
        committer.close(_TIMEOUT)
    assert outcome.accepted == 1
    assert recording.transactions == [["a"]]


def test_the_committer_waits_for_a_request_on_its_way(recording):
    committer = _committer(recording)
    announced = threading.Event()
    submit_now = threading.Event()
    futures = []

    def request_being_decoded() -> None:
        with committer.arriving():
            announced.set()
            assert submit_now.wait(_TIMEOUT)
            futures.append(committer.submit([_event("b")]))

    decoder = threading.Thread(target=request_being_decoded)
    decoder.start()
    assert announced.wait(_TIMEOUT)
    first = committer.submit([_event("a")])
    # The committer has "a" and knows another request is on its way: it must not commit "a" alone. (The
    # pause gives a committer that wrongly does so the time to; a correct one passes whatever the timing.)
    threading.Event().wait(0.05)
    submit_now.set()
    decoder.join(_TIMEOUT)
    try:
        assert first.result(timeout=_TIMEOUT).accepted == 1
        assert futures[0].result(timeout=_TIMEOUT).accepted == 1
    finally:
        committer.close(_TIMEOUT)
    assert recording.transactions == [["a", "b"]]
    assert committer.batches_committed == 1
    assert (committer.submissions_committed, committer.events_committed) == (2, 2)


def test_an_announced_request_that_fails_to_decode_stops_the_wait(recording):
    committer = _committer(recording)
    announced = threading.Event()
    fail_now = threading.Event()

    def request_that_fails() -> None:
        with pytest.raises(ValueError), committer.arriving():
            announced.set()
            assert fail_now.wait(_TIMEOUT)
            raise ValueError("undecodable")

    decoder = threading.Thread(target=request_that_fails)
    decoder.start()
    assert announced.wait(_TIMEOUT)
    first = committer.submit([_event("a")])
    fail_now.set()
    decoder.join(_TIMEOUT)
    try:
        assert first.result(timeout=_TIMEOUT).accepted == 1
    finally:
        committer.close(_TIMEOUT)
    assert recording.transactions == [["a"]]


def test_requests_queued_during_a_commit_share_the_next_one(recording):
    recording.gate = threading.Event()
    committer = _committer(recording, max_wait=0.0)
    first = committer.submit([_event("a")])
    assert recording.entered.wait(_TIMEOUT)
    later = [committer.submit([_event(key)]) for key in ("b", "c", "d")]
    recording.gate.set()
    try:
        for future in (first, *later):
            assert future.result(timeout=_TIMEOUT).accepted == 1
    finally:
        committer.close(_TIMEOUT)
    assert recording.transactions == [["a"], ["b", "c", "d"]]


def test_submitting_after_close_is_refused(recording):
    committer = _committer(recording)
    assert committer.close(_TIMEOUT)
    with pytest.raises(ReceiverClosedError):
        committer.submit([_event("a")])
