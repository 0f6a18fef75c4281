"""Each part exports its public API in one place, and exactly what it says it exports."""

import importlib

import pytest

import spanledger.billing
import spanledger.exporter
import spanledger.instrumentation


@pytest.mark.parametrize("module", [spanledger.billing, spanledger.exporter, spanledger.instrumentation])
def test_every_exported_name_resolves(module):
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_billing_api_is_exactly_this():
    assert set(spanledger.billing.__all__) == {
        "DEFAULT_EVENT_NAME", "UNATTRIBUTED_CUSTOMER", "ConfigurationError", "ConflictError",
        "ImmutableInvoiceError", "IngestResult", "InvalidEventError", "InvalidMeterError",
        "MeterDefinition", "NotFoundError", "Price", "RejectedEvent", "SpanledgerError",
        "StorageUnavailableError", "UsageEvent", "UsageRow", "create_engine_from_url", "finalize",
        "ingest", "make_session_factory", "meter_usage", "price_usage", "round_line_amount",
        "run_invoices", "upgrade",
    }  # fmt: skip
    with pytest.raises(AttributeError):
        spanledger.billing.not_a_name  # noqa: B018


def test_importing_billing_is_cheap():
    # The CLI and the instrumentation must not pay for Stripe, gRPC or genai-prices on import.
    code = (
        "import sys, spanledger.billing; "
        "heavy = [m for m in ('stripe', 'grpc', 'genai_prices', 'uvicorn') if m in sys.modules]; "
        "print(heavy)"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_exception_hierarchy():
    from spanledger.billing.errors import SpanledgerError

    for dotted in (
        "spanledger.billing.pricing:InvalidPriceError",
        "spanledger.billing.catalog:CatalogError",
        "spanledger.billing.stripe:StripeSyncError",
    ):
        module, name = dotted.split(":")
        assert issubclass(getattr(importlib.import_module(module), name), SpanledgerError), dotted
