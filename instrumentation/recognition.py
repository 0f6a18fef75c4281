"""Recognise an LLM request from its method, URL path, headers and JSON body, and name its provider.

Recognition is by wire format, not by SDK, so any client speaking a format is covered: OpenAI
(``…/chat/completions``, the legacy ``…/completions``, ``…/responses``, ``…/embeddings``), Anthropic
(``…/v1/messages``, or ``…/messages`` with an ``anthropic-version`` header) and Gemini
(``…/models/{model}:generateContent`` or ``:streamGenerateContent``). Anything else is left alone at
the cost of a few string comparisons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from spanledger.instrumentation.config import InstrumentationConfig
from spanledger.instrumentation.facts import CallSpec, ResponseReader
from spanledger.instrumentation.wire_anthropic import MessagesReader
from spanledger.instrumentation.wire_gemini import GenerateContentReader
from spanledger.instrumentation.wire_openai import (
    ChatCompletionsReader,
    EmbeddingsReader,
    ResponsesReader,
    TextCompletionsReader,
    add_include_usage,
)

__all__ = ["KNOWN_HOSTS", "provider_for_host", "recognise"]

#: Hosts whose provider is certain. Names follow the GenAI conventions where they define one.
KNOWN_HOSTS: Mapping[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.together.xyz": "together_ai",
    "api.fireworks.ai": "fireworks_ai",
}
_KNOWN_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure.ai.openai"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
)
_WIRE_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}
_GEMINI_PATH = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")
_DEFAULT_PORTS = {"https": 443, "http": 80}
#: Readers of OpenAI-format streams that carry usage only when ``stream_options.include_usage`` is set.
_ASKS_STREAM_USAGE: tuple[type[ResponseReader], ...] = (ChatCompletionsReader, TextCompletionsReader)


def provider_for_host(host: str, port: int | None, wire: str, config: InstrumentationConfig) -> str:
    """Configured host (with or without port), else a known host, else the configured default or wire."""
    host = host.lower()
    configured = config.provider_hosts or {}
    if port is not None and f"{host}:{port}" in configured:
        return configured[f"{host}:{port}"]
    if host in configured:
        return configured[host]
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host]
    for suffix, provider in _KNOWN_HOST_SUFFIXES:
        if host.endswith(suffix):
            return provider
    return config.default_provider or _WIRE_PROVIDER[wire]


def recognise(
    method: str,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    stream_read: bool,
    config: InstrumentationConfig,
) -> CallSpec | None:
    """The :class:`CallSpec` for an LLM request, or ``None`` when the request is not one.

    ``stream_read`` says whether the caller reads the response as a stream (``send(stream=True)``):
    only then may an OpenAI chat request be rewritten to ask for stream usage, because only then can
    the extra usage chunk be removed before the caller sees it.
    """
    if method != "POST":
        return None
    server_port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    gemini = _GEMINI_PATH.search(path) if ":" in path else None
    if gemini is not None:
        return CallSpec(
            operation="generate_content",
            provider=provider_for_host(host, server_port, "gemini", config),
            request_model=gemini.group(1),
            streaming=gemini.group(2) == "streamGenerateContent",
            server_address=host or None,
            server_port=server_port,
            new_reader=GenerateContentReader,
        )
    if path.endswith("/chat/completions"):
        wire, operation, reader, required = "openai", "chat", ChatCompletionsReader, "messages"
    elif path.endswith("/completions"):
        wire, operation, reader, required = "openai", "text_completion", TextCompletionsReader, "prompt"
    elif path.endswith("/responses"):
        wire, operation, reader, required = "openai", "chat", ResponsesReader, "input"
    elif path.endswith("/embeddings"):
        wire, operation, reader, required = "openai", "embeddings", EmbeddingsReader, "input"
    elif path.endswith("/v1/messages") or (path.endswith("/messages") and "anthropic-version" in headers):
        wire, operation, reader, required = "anthropic", "chat", MessagesReader, "messages"
    else:
        return None
    payload = _json_object(body)
    if payload is None or required not in payload:
        return None
    model = payload.get("model")
    streaming = payload.get("stream") is True
    rewritten = None
    if reader in _ASKS_STREAM_USAGE and streaming and stream_read and config.openai_stream_usage:
        rewritten = add_include_usage(payload)
    new_reader: type[ResponseReader] = reader
    return CallSpec(
        operation=operation,
        provider=provider_for_host(host, server_port, wire, config),
        request_model=model if isinstance(model, str) and model else None,
        streaming=streaming,
        server_address=host or None,
        server_port=server_port,
        new_reader=new_reader,
        rewritten_body=rewritten,
    )


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    if not body or body[:1] not in (b"{", b" ", b"\n", b"\r", b"\t"):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
