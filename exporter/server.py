"""The receiver process: both OTLP listeners over one group committer and one ledger.

:class:`Receiver` wires the pieces (engine → session factory → :class:`GroupCommitter` → :class:`TraceIntake`
→ gRPC server and uvicorn/Starlette), :class:`ReceiverSettings` holds the configuration (arguments, else
``SPANLEDGER_*`` variables, else defaults). ``spanledger serve`` and ``python -m spanledger.exporter`` call
:func:`serve`.

Shutdown is graceful: both listeners stop accepting, in-flight requests finish (and are acknowledged only
after their commit), the committer drains, then the engine is disposed. Several receiver processes can
share one PostgreSQL ledger: dedupe keys make each event land once whichever process stores it.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.environment_variables import positive_int_from_env
from spanledger.billing.errors import ConfigurationError
from spanledger.billing.ingest import ingest
from spanledger.exporter.auth import TokenAuthenticator
from spanledger.exporter.environment_variables import (
    SPANLEDGER_AUTH_TOKENS,
    SPANLEDGER_COMMIT_MAX_BATCH_EVENTS,
    SPANLEDGER_COMMIT_MAX_WAIT_MS,
    SPANLEDGER_GRPC_ENDPOINT,
    SPANLEDGER_HTTP_ENDPOINT,
    SPANLEDGER_MAX_PENDING_EVENTS,
    SPANLEDGER_RETRY_AFTER_SECONDS,
    SPANLEDGER_SHUTDOWN_GRACE_SECONDS,
    SPANLEDGER_TLS_CERT_FILE,
    SPANLEDGER_TLS_KEY_FILE,
    SPANLEDGER_WORKERS,
)
from spanledger.exporter.group_commit import GroupCommitter, IngestFunction
from spanledger.exporter.limits import ReceiverLimits
from spanledger.exporter.mapping import MappingSettings
from spanledger.exporter.receiver_grpc import TLSFiles, create_grpc_server
from spanledger.exporter.receiver_http import create_http_app
from spanledger.exporter.trace_intake import TraceIntake
from spanledger.exporter.workers import reuse_port_socket

__all__ = [
    "DEFAULT_GRPC_ENDPOINT",
    "DEFAULT_HTTP_ENDPOINT",
    "Receiver",
    "ReceiverSettings",
    "freeze_startup_objects",
    "parse_endpoint",
    "serve",
]

_log = logging.getLogger(__name__)

DEFAULT_GRPC_ENDPOINT = "0.0.0.0:4317"
DEFAULT_HTTP_ENDPOINT = "0.0.0.0:4318"
_OFF = ("", "off", "none", "false", "0")


def parse_endpoint(value: str | None, default: str) -> str | None:
    """``host:port`` as given, ``default`` when unset, ``None`` for off/none/false/0."""
    if value is None:
        return default
    return None if value.strip().lower() in _OFF else value.strip()


def _float_from_env(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        _log.warning("%s=%r is not a non-negative number; using %s", name, raw, default)
        return default
    return value


@dataclass(frozen=True)
class ReceiverSettings:
    """Everything ``spanledger serve`` can be told. ``None`` endpoints are disabled."""

    database_url: str | None = None
    grpc_endpoint: str | None = DEFAULT_GRPC_ENDPOINT
    http_endpoint: str | None = DEFAULT_HTTP_ENDPOINT
    auth_tokens: tuple[str, ...] = ()
    tls: TLSFiles | None = None
    limits: ReceiverLimits = field(default_factory=ReceiverLimits)
    mapping: MappingSettings = field(default_factory=MappingSettings)
    max_pending_events: int = 100_000
    commit_max_batch_events: int = 5000
    commit_max_wait_seconds: float = 0.005
    retry_after_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    #: Bring the schema to the current revision at start (what makes the SQLite default zero-config).
    migrate: bool = True
    #: Receiver processes sharing the ports (:mod:`spanledger.exporter.workers`).
    workers: int = 1

    def __post_init__(self) -> None:
        if self.grpc_endpoint is None and self.http_endpoint is None:
            raise ConfigurationError("both listeners are disabled; enable gRPC or HTTP")
        if self.workers < 1:
            raise ConfigurationError(f"workers must be at least 1, not {self.workers}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ReceiverSettings:
        """Settings from the ``SPANLEDGER_*`` variables; ``overrides`` (e.g. CLI options) win."""
        env = os.environ if environ is None else environ
        cert, key = (
            env.get(SPANLEDGER_TLS_CERT_FILE, "").strip(),
            env.get(SPANLEDGER_TLS_KEY_FILE, "").strip(),
        )
        if bool(cert) != bool(key):
            _log.warning(
                "TLS needs both %s and %s; serving without TLS",
                SPANLEDGER_TLS_CERT_FILE,
                SPANLEDGER_TLS_KEY_FILE,
            )
        default = cls()
        values: dict[str, Any] = {
            "grpc_endpoint": parse_endpoint(env.get(SPANLEDGER_GRPC_ENDPOINT), DEFAULT_GRPC_ENDPOINT),
            "http_endpoint": parse_endpoint(env.get(SPANLEDGER_HTTP_ENDPOINT), DEFAULT_HTTP_ENDPOINT),
            "auth_tokens": tuple(
                t.strip() for t in env.get(SPANLEDGER_AUTH_TOKENS, "").split(",") if t.strip()
            ),
            "tls": TLSFiles(cert, key) if cert and key else None,
            "limits": ReceiverLimits.from_environment(env),
            "mapping": MappingSettings.from_environment(env),
            "max_pending_events": positive_int_from_env(
                env, SPANLEDGER_MAX_PENDING_EVENTS, default.max_pending_events
            ),
            "commit_max_batch_events": positive_int_from_env(
                env, SPANLEDGER_COMMIT_MAX_BATCH_EVENTS, default.commit_max_batch_events
            ),
            "commit_max_wait_seconds": _float_from_env(
                env, SPANLEDGER_COMMIT_MAX_WAIT_MS, default.commit_max_wait_seconds * 1000
            )
            / 1000,
            "retry_after_seconds": _float_from_env(
                env, SPANLEDGER_RETRY_AFTER_SECONDS, default.retry_after_seconds
            ),
            "shutdown_grace_seconds": _float_from_env(
                env, SPANLEDGER_SHUTDOWN_GRACE_SECONDS, default.shutdown_grace_seconds
            ),
            "workers": positive_int_from_env(env, SPANLEDGER_WORKERS, default.workers),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> ReceiverSettings:
        return dataclasses.replace(self, **changes)


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"endpoint {endpoint!r} must be host:port, e.g. 0.0.0.0:4318")
    return host.strip("[]"), int(port)


class Receiver:
    """Both listeners of one receiver process; :meth:`start` returns once they listen."""

    def __init__(
        self,
        settings: ReceiverSettings | None = None,
        *,
        ingest_function: IngestFunction = ingest,
        extra_routes: Sequence[BaseRoute] = (),
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: bind with ``SO_REUSEPORT``, to share the ports with other workers."""
        self.settings = settings or ReceiverSettings.from_environment()
        self._reuse_port = reuse_port
        self.engine = create_engine_from_url(self.settings.database_url)
        self.committer = GroupCommitter(
            make_session_factory(self.engine),
            max_batch_events=self.settings.commit_max_batch_events,
            max_wait_seconds=self.settings.commit_max_wait_seconds,
            max_pending_events=self.settings.max_pending_events,
            ingest_function=ingest_function,
            events_validated=True,  # they come from TraceIntake's mapping, which validates each event
        )
        self.intake = TraceIntake(
            self.committer, limits=self.settings.limits, mapping_settings=self.settings.mapping
        )
        self.authenticator = TokenAuthenticator(self.settings.auth_tokens)
        self._extra_routes = extra_routes
        self._grpc_server: Any = None
        self._http_server: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self._stopped = False

    def start(self) -> None:
        """Migrate if asked, then bind and start the enabled listeners."""
        settings = self.settings
        if settings.migrate:
            migrate_if_needed(self.engine)
        if settings.grpc_endpoint is not None:
            self._grpc_server, self.grpc_port = create_grpc_server(
                self.intake,
                settings.grpc_endpoint,
                authenticator=self.authenticator,
                tls=settings.tls,
                retry_after_seconds=settings.retry_after_seconds,
                reuse_port=self._reuse_port,
            )
            if not self.grpc_port:
                raise ConfigurationError(f"cannot listen for OTLP/gRPC on {settings.grpc_endpoint}")
            self._grpc_server.start()
        if settings.http_endpoint is not None:
            self._start_http(*_host_port(settings.http_endpoint))
        _log.info("spanledger receiver listening: gRPC %s, HTTP %s", self.grpc_port, self.http_port)

    def _start_http(self, host: str, port: int) -> None:
        app = create_http_app(
            self.intake,
            authenticator=self.authenticator,
            retry_after_seconds=self.settings.retry_after_seconds,
            extra_routes=self._extra_routes,
        )
        tls = self.settings.tls
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=tls.cert_file if tls else None,
            ssl_keyfile=tls.key_file if tls else None,
            timeout_graceful_shutdown=max(1, int(self.settings.shutdown_grace_seconds)),
        )
        server = uvicorn.Server(config)
        sockets = [reuse_port_socket(host, port)] if self._reuse_port else None
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": sockets}, name="spanledger-http", daemon=True
        )
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise ConfigurationError(f"cannot listen for OTLP/HTTP on {host}:{port}")
            thread.join(0.01)
        self._http_server, self._http_thread = server, thread
        self.http_port = server.servers[0].sockets[0].getsockname()[1]

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight requests finish, drain the committer, release the database."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        grpc_stopped = self._grpc_server.stop(grace) if self._grpc_server is not None else None
        if self._http_server is not None and self._http_thread is not None:
            self._http_server.should_exit = True
            self._http_thread.join(grace + 1)
        if grpc_stopped is not None:
            grpc_stopped.wait(grace + 1)
        if not self.committer.close(timeout=grace):
            _log.error("the commit queue did not drain within %.1fs", grace)
        committer = self.committer
        _log.info(
            "group commit: %d events of %d requests in %d transactions",
            committer.events_committed,
            committer.submissions_committed,
            committer.batches_committed,
        )
        self.engine.dispose()

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def freeze_startup_objects() -> None:
    """Put what starting a receiver allocated (modules, SQLAlchemy and protobuf machinery, the price data)
    out of the garbage collector's sight, as long-running Python servers do: a full collection then scans
    what requests allocate, not ~140k objects that live as long as the process (~85 ms of CPU each time,
    at moments nobody chooses)."""
    gc.collect()
    gc.freeze()


def migrate_if_needed(engine: Any) -> None:
    """Upgrade the schema to the head revision unless it is there already."""
    from spanledger.billing.migrate import current_revision, head_revision, upgrade

    if current_revision(engine) != head_revision():
        upgrade(engine)


def serve(
    settings: ReceiverSettings | None = None,
    *,
    extra_routes: Sequence[BaseRoute] | Callable[[], Sequence[BaseRoute]] = (),
) -> int:
    """Run a receiver (or ``settings.workers`` of them) until SIGINT or SIGTERM, then shut down gracefully.

    ``extra_routes`` are served beside ``/v1/traces`` on the HTTP listener (Stripe webhooks, portal);
    give a function that builds them to have each worker build its own. Returns the exit status.
    """
    settings = settings or ReceiverSettings.from_environment()
    routes_factory = extra_routes if callable(extra_routes) else lambda: extra_routes
    if settings.workers > 1:
        from spanledger.exporter.workers import serve_workers

        return serve_workers(settings, routes_factory)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    receiver = Receiver(settings, extra_routes=routes_factory())
    try:
        receiver.start()
        freeze_startup_objects()
        print(
            f"spanledger receiver: OTLP/gRPC on {receiver.grpc_port or 'off'}, "
            f"OTLP/HTTP on {receiver.http_port or 'off'}; Ctrl-C to stop",
            flush=True,
        )
        stop.wait()
    finally:
        receiver.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
