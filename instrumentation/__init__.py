"""spanledger's OpenTelemetry instrumentation: every LLM call becomes one GenAI span.

Under ``opentelemetry-instrument python app.py`` it loads by itself (entry point ``spanledger``).
Attribute calls to the paying customer with :func:`customer`::

    from spanledger.instrumentation import customer

    with customer("acme"):
        client.chat.completions.create(model="gpt-4o", messages=[...])
"""

from spanledger.instrumentation.attributes import SPANLEDGER_USAGE_MISSING
from spanledger.instrumentation.customer import CustomerScope, customer
from spanledger.instrumentation.instrumentor import SpanledgerInstrumentor
from spanledger.instrumentation.version import __version__

__all__ = [
    "SPANLEDGER_USAGE_MISSING",
    "CustomerScope",
    "SpanledgerInstrumentor",
    "__version__",
    "customer",
]
