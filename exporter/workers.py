"""Several receiver processes behind the same ports: ``spanledger serve --workers N``.

One receiver process runs its Python (decoding, mapping, pricing) on one core at a time, so a machine
with more cores serves more spans with more processes. The parent migrates the schema once, then forks
``N`` workers; each runs a complete :class:`~spanledger.exporter.server.Receiver` (listeners, group
committer, engine of its own) and binds the same ports with ``SO_REUSEPORT``, so the kernel spreads
connections over them. The ledger keeps every guarantee across workers: dedupe keys make each event land
once whichever worker stores it, and the ingest lock serialises their transactions (on SQLite, each
worker's group commit becomes one write transaction; on PostgreSQL, one row lock).

A port of ``0`` is resolved once, in the parent, to a free port all workers share (a bound, not
listening, ``SO_REUSEPORT`` socket holds it until the workers listen). SIGINT or SIGTERM stops every
worker gracefully (each drains its in-flight requests); a worker that dies stops the others and
``serve`` exits with an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spanledger.billing.errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from spanledger.exporter.server import ReceiverSettings

__all__ = ["serve_workers"]

_log = logging.getLogger(__name__)

RoutesFactory = Callable[[], Sequence["BaseRoute"]]


def serve_workers(settings: ReceiverSettings, routes_factory: RoutesFactory) -> int:
    """Run ``settings.workers`` receiver processes until SIGINT/SIGTERM; returns the exit status."""
    from spanledger.billing.db import create_engine_from_url
    from spanledger.exporter.server import migrate_if_needed

    if not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("--workers above 1 needs fork and SO_REUSEPORT (Linux, macOS); use 1")
    if settings.migrate:
        engine = create_engine_from_url(settings.database_url)
        try:
            migrate_if_needed(engine)
        finally:
            engine.dispose()
    placeholders: list[socket.socket] = []
    try:
        settings = _with_shared_ports(settings, placeholders)
        ready_read, ready_write = os.pipe()
        children = [
            _fork_worker(settings, routes_factory, ready_read, ready_write) for _ in range(settings.workers)
        ]
        os.close(ready_write)
        started = _wait_until_ready(ready_read, len(children))
    finally:
        for placeholder in placeholders:
            placeholder.close()
    if started < len(children):
        _stop(children)
        raise ConfigurationError(f"only {started} of {len(children)} workers started; see the log above")
    print(
        f"spanledger receiver: OTLP/gRPC on {_port(settings.grpc_endpoint)}, "
        f"OTLP/HTTP on {_port(settings.http_endpoint)}, {len(children)} workers; Ctrl-C to stop",
        flush=True,
    )
    return _supervise(children)


def _with_shared_ports(settings: ReceiverSettings, placeholders: list[socket.socket]) -> ReceiverSettings:
    """``settings`` with every ``host:0`` endpoint turned into one concrete port for all workers."""
    changes: dict[str, str] = {}
    for name in ("grpc_endpoint", "http_endpoint"):
        endpoint: str | None = getattr(settings, name)
        if endpoint is None:
            continue
        host, _, port = endpoint.rpartition(":")
        if port != "0":
            continue
        placeholder = reuse_port_socket(host.strip("[]"), 0)
        placeholders.append(placeholder)
        changes[name] = f"{host}:{placeholder.getsockname()[1]}"
    return settings.replace(**changes) if changes else settings


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot bind {host}:{port}: {exc.strerror}") from exc
    return sock


def _fork_worker(
    settings: ReceiverSettings, routes_factory: RoutesFactory, ready_read: int, ready_write: int
) -> int:
    pid = os.fork()
    if pid:
        return pid
    # The worker: never returns into the parent's code.
    status = 1
    try:
        os.close(ready_read)
        status = _run_worker(settings, routes_factory, ready_write)
    except BaseException:  # a worker must report and exit, never unwind into the parent's stack
        _log.exception("receiver worker %d failed", os.getpid())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _run_worker(settings: ReceiverSettings, routes_factory: RoutesFactory, ready_write: int) -> int:
    import threading

    from spanledger.exporter.server import Receiver, freeze_startup_objects

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    receiver = Receiver(
        settings.replace(migrate=False, workers=1), extra_routes=routes_factory(), reuse_port=True
    )
    try:
        receiver.start()
        freeze_startup_objects()
        os.write(ready_write, b"1")
        os.close(ready_write)
        stop.wait()
    finally:
        receiver.stop()
    return 0


def _wait_until_ready(ready_read: int, expected: int) -> int:
    started = 0
    with os.fdopen(ready_read, "rb") as ready:
        while started < expected:
            if not ready.read(1):  # every worker closed its end: the rest failed
                break
            started += 1
    return started


def _supervise(children: list[int]) -> int:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        _signal_all(children, signal.SIGTERM)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        remaining = set(children)
        while remaining:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            if pid not in remaining:
                continue
            remaining.discard(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                _log.error("receiver worker %d exited (%s); stopping the others", pid, code)
                status = 1
                stopping = True
                _signal_all(sorted(remaining), signal.SIGTERM)
            elif code != 0:
                status = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _stop(children: list[int]) -> None:
    _signal_all(children, signal.SIGTERM)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _signal_all(children: Sequence[int], sig: signal.Signals) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _port(endpoint: str | None) -> str:
    return "off" if endpoint is None else endpoint.rpartition(":")[2]
