"""Real OpenTelemetry SDK spans for the exporter tests, and their OTLP encodings."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.exporter.sdk_spans import span_record_from_sdk
from spanledger.exporter.spans import SpanRecord


def memory_provider(
    resource: Mapping[str, object] | None = None,
) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(dict(resource or {"service.name": "test-app"})))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def make_spans(
    specs: Sequence[Mapping[str, object]],
    *,
    scope: str = "test.scope",
    scope_version: str = "1.0",
    resource: Mapping[str, object] | None = None,
) -> list[ReadableSpan]:
    """One finished SDK span per attribute mapping in ``specs``."""
    provider, exporter = memory_provider(resource)
    tracer = provider.get_tracer(scope, scope_version)
    for attributes in specs:
        with tracer.start_as_current_span("chat test", attributes=dict(attributes)):  # type: ignore[arg-type]
            pass
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


def records(spans: Sequence[ReadableSpan], max_attribute_length: int = 4096) -> list[SpanRecord]:
    return [span_record_from_sdk(span, max_attribute_length) for span in spans]


def otlp_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def _hex_ids(node: object) -> object:
    """protobuf's canonical JSON has base64 ids; OTLP/JSON has hex ids."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            else:
                out[key] = _hex_ids(value)
        return out
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def otlp_json_document(spans: Sequence[ReadableSpan]) -> dict:
    return _hex_ids(MessageToDict(encode_spans(spans)))  # type: ignore[return-value]


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    return json.dumps(otlp_json_document(spans)).encode()


def unwrap_leftover_wrappers(package_name: str) -> list[str]:
    """Undo method wrappers an instrumentation left on ``package_name``'s classes.

    OpenLLMetry 0.62's ``uninstrument()`` leaves its wrappers on the SDK classes (it unwraps other
    module paths than it wrapped), which would change later tests' SDK behaviour; returns what was
    unwrapped.
    """
    import importlib
    import inspect
    import pkgutil

    package = importlib.import_module(package_name)
    restored = []
    for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an optional submodule whose extra is not installed
            continue
        for cls in [
            c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__
        ]:
            for attribute, value in list(vars(cls).items()):
                if type(value).__name__.endswith("FunctionWrapper") and hasattr(value, "__wrapped__"):
                    setattr(cls, attribute, value.__wrapped__)
                    restored.append(f"{cls.__qualname__}.{attribute}")
    return restored
