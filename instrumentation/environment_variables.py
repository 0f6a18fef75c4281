"""Every environment variable the spanledger instrumentation reads, in one place.

A constructor argument to :meth:`SpanledgerInstrumentor.instrument` wins over the variable; a variable
that cannot be parsed is logged and the default is used (the app must start regardless).
"""

__all__ = [
    "SPANLEDGER_BAGGAGE_ATTRIBUTES",
    "SPANLEDGER_CUSTOMER_BAGGAGE_KEY",
    "SPANLEDGER_DEFAULT_PROVIDER",
    "SPANLEDGER_OPENAI_STREAM_USAGE",
    "SPANLEDGER_PROVIDER_HOSTS",
]

SPANLEDGER_CUSTOMER_BAGGAGE_KEY = "SPANLEDGER_CUSTOMER_BAGGAGE_KEY"
"""
.. envvar:: SPANLEDGER_CUSTOMER_BAGGAGE_KEY

The OpenTelemetry baggage key holding the paying customer's id, copied to the span as ``customer.id``.
Default: ``customer.id``.
"""

SPANLEDGER_BAGGAGE_ATTRIBUTES = "SPANLEDGER_BAGGAGE_ATTRIBUTES"
"""
.. envvar:: SPANLEDGER_BAGGAGE_ATTRIBUTES

Comma-separated allow-list of further baggage keys copied to the span under the same name
(e.g. ``customer.plan,feature``). Default: empty (nothing else is copied).
"""

SPANLEDGER_OPENAI_STREAM_USAGE = "SPANLEDGER_OPENAI_STREAM_USAGE"
"""
.. envvar:: SPANLEDGER_OPENAI_STREAM_USAGE

``true`` (default) adds ``stream_options.include_usage`` to streamed OpenAI-format chat requests that
do not already ask for it, and removes the extra usage chunk before the app sees the stream.
``false`` leaves requests untouched; such streams are then recorded with ``spanledger.usage.missing``.
"""

SPANLEDGER_PROVIDER_HOSTS = "SPANLEDGER_PROVIDER_HOSTS"
"""
.. envvar:: SPANLEDGER_PROVIDER_HOSTS

Comma-separated ``host=provider`` or ``host:port=provider`` pairs naming the provider behind hosts the
instrumentation does not know, e.g. ``vllm.internal=vllm,localhost:11434=ollama``. Checked before the
built-in host table.
"""

SPANLEDGER_DEFAULT_PROVIDER = "SPANLEDGER_DEFAULT_PROVIDER"
"""
.. envvar:: SPANLEDGER_DEFAULT_PROVIDER

``gen_ai.provider.name`` for a host that is neither configured nor known. Default: the provider whose
wire format the request speaks (``openai``, ``anthropic`` or ``gcp.gemini``).
"""
