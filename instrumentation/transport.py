"""The seam: wrappers around ``Client.send`` and ``AsyncClient.send`` of httpx and httpx2.

``send`` is the one public method every request of a client goes through (``request``, ``post``,
``stream`` and the SDKs all end there), and it runs the transport, so an HTTP client span from
opentelemetry-instrumentation-httpx (which wraps the transport) always nests under the GenAI span,
whichever instrumentation was applied first.

For a recognised request the wrapper starts the GenAI span, makes it current while the request is
sent, and then either reads the facts from the already-read body (``stream=False``) or wraps the
response stream so the span ends with the stream. Unrecognised requests pass straight through.
Exceptions from the call are recorded and re-raised untouched; the wrapper's own failures are logged
once and the call proceeds as if uninstrumented.

When a client is instrumented on its own (``instrument_client``) and its class globally too, two wrappers
see the same call: the outer one records it, and the inner one sees :data:`_RECORDING` set and passes the
call through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from types import ModuleType
from typing import Any

from opentelemetry import context, trace

from spanledger.instrumentation.body_recorder import BodyRecorder, body_mode, facts_from_complete_body
from spanledger.instrumentation.call_span import GenAICall, error_type_of
from spanledger.instrumentation.config import InstrumentationConfig
from spanledger.instrumentation.facts import CallSpec
from spanledger.instrumentation.failures import log_failure_once
from spanledger.instrumentation.recognition import recognise
from spanledger.instrumentation.streams import recording_stream_classes

__all__ = ["SendWrappers", "make_send_wrappers"]

#: Set while a wrapper is inside the ``send`` it records, so a nested wrapper does not record it again.
_RECORDING: ContextVar[bool] = ContextVar("spanledger_recording", default=False)

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class SendWrappers:
    """The sync and async ``send`` wrappers for one HTTP library (``wrapt`` signature)."""

    def __init__(self, sync_send: Wrapper, async_send: Wrapper) -> None:
        self.sync_send = sync_send
        self.async_send = async_send


def make_send_wrappers(
    module: ModuleType, tracer: trace.Tracer, config: InstrumentationConfig
) -> SendWrappers:
    """Build the wrappers for ``module`` (``httpx`` or ``httpx2``)."""
    sync_stream, async_stream = recording_stream_classes(module)
    decoders = _decoder_table(module)

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Started | None:
        try:
            request = args[0] if args else kwargs["request"]
            stream_read = bool(kwargs.get("stream", False))
            spec = _recognise(request, stream_read, config)
            if spec is None:
                return None
            call = GenAICall.start(tracer, spec, config)
        except Exception as exc:
            log_failure_once("recognising the request", exc)
            return None
        sent_args, sent_kwargs = args, kwargs
        if spec.rewritten_body is not None:
            replacement = _rewritten_request(module, request, spec.rewritten_body)
            if replacement is not None:
                sent_args, sent_kwargs = _replace_request(args, kwargs, replacement)
            else:
                spec = _without_rewrite(spec)
        return _Started(call, spec, request, stream_read, sent_args, sent_kwargs)

    def observe(started: _Started, response: Any, stream_class: type[Any]) -> None:
        call, spec = started.call, started.spec
        try:
            if spec.rewritten_body is not None:
                response.request = started.request  # the app sees the request it built
            status = response.status_code
            if status >= 400:
                call.end(None, error_type=str(status), usage_expected=False)
                return
            if not 200 <= status < 300:
                call.end(None, usage_expected=False)
                return
            if not started.stream_read:
                mode = body_mode(spec, response.headers.get("content-type"))
                facts = facts_from_complete_body(spec.new_reader(), mode, response.content)
                call.end(facts)
                return
            strip = spec.rewritten_body is not None
            preread = getattr(response, "_content", None)
            if isinstance(preread, bytes):
                # Built from bytes (e.g. by a MockTransport), the body was read before reaching us.
                _record_preread(call, spec, response, preread, strip)
                return
            recorder = BodyRecorder(call, spec, response.headers, strip, decoders)
            response.stream = stream_class(response.stream, recorder)
        except Exception as exc:
            log_failure_once("reading the response", exc)
            call.end(None)

    def sync_send(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = None if _RECORDING.get() else begin(args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        token = context.attach(trace.set_span_in_context(started.call.span))
        recording = _RECORDING.set(True)
        try:
            response = wrapped(*started.args, **started.kwargs)
        except BaseException as exc:
            started.call.end(None, error_type=error_type_of(exc), usage_expected=False)
            raise
        finally:
            _RECORDING.reset(recording)
            context.detach(token)
        observe(started, response, sync_stream)
        return response

    async def async_send(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = None if _RECORDING.get() else begin(args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        token = context.attach(trace.set_span_in_context(started.call.span))
        recording = _RECORDING.set(True)
        try:
            response = await wrapped(*started.args, **started.kwargs)
        except BaseException as exc:
            started.call.end(None, error_type=error_type_of(exc), usage_expected=False)
            raise
        finally:
            _RECORDING.reset(recording)
            context.detach(token)
        observe(started, response, async_stream)
        return response

    return SendWrappers(sync_send, async_send)


class _Started:
    __slots__ = ("args", "call", "kwargs", "request", "spec", "stream_read")

    def __init__(
        self,
        call: GenAICall,
        spec: CallSpec,
        request: Any,
        stream_read: bool,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.call, self.spec, self.request, self.stream_read = call, spec, request, stream_read
        self.args, self.kwargs = args, kwargs


def _recognise(request: Any, stream_read: bool, config: InstrumentationConfig) -> CallSpec | None:
    if request.method != "POST":
        return None
    url = request.url
    try:
        body = request.content
    except Exception:  # a streaming request body (RequestNotRead): not an LLM API call we can read
        body = None
    return recognise(
        request.method, url.scheme, url.host, url.port, url.path, request.headers, body, stream_read, config
    )


def _record_preread(call: GenAICall, spec: CallSpec, response: Any, content: bytes, strip: bool) -> None:
    """Record a response whose body is already in memory (decoded), filtering it like a stream."""
    headers = {"content-type": response.headers.get("content-type", "")}
    recorder = BodyRecorder(call, spec, headers, strip, None)
    shown = recorder.feed(content) + recorder.end_of_body()
    recorder.finish(None)
    if strip and shown != content:
        response._content = shown


def _rewritten_request(module: ModuleType, request: Any, body: bytes) -> Any:
    """A copy of ``request`` with ``body``; asks for an uncompressed answer so it can be filtered."""
    try:
        headers = request.headers.copy()
        headers["Content-Length"] = str(len(body))
        headers["Accept-Encoding"] = "identity"
        # ``stream=`` rather than ``content=``: the headers are complete already, so the library skips
        # re-encoding the body and rebuilding the headers (a third of the stream overhead otherwise).
        replacement = module.Request(
            request.method,
            request.url,
            headers=headers,
            stream=module.ByteStream(body),
            extensions=dict(request.extensions),
        )
        replacement._content = body  # what ``Request.read()`` would have stored
        return replacement
    except Exception as exc:
        log_failure_once("adding stream_options.include_usage", exc)
        return None


def _replace_request(
    args: tuple[Any, ...], kwargs: dict[str, Any], request: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args:
        return (request, *args[1:]), kwargs
    return args, {**kwargs, "request": request}


def _without_rewrite(spec: CallSpec) -> CallSpec:
    return replace(spec, rewritten_body=None)


def _decoder_table(module: ModuleType) -> Mapping[str, Any] | None:
    decoders = getattr(getattr(module, "_decoders", None), "SUPPORTED_DECODERS", None)
    return decoders if isinstance(decoders, Mapping) else None
