"""The public surface of spanledger.instrumentation and its configuration rules."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import pytest

import spanledger.instrumentation as instrumentation
from spanledger.instrumentation.config import InstrumentationConfig


def test_exports_exactly_the_public_api():
    assert set(instrumentation.__all__) == {
        "SPANLEDGER_USAGE_MISSING",
        "CustomerScope",
        "SpanledgerInstrumentor",
        "__version__",
        "customer",
    }


def test_entry_point_loads_the_instrumentor():
    (point,) = [p for p in entry_points(group="opentelemetry_instrumentor") if p.name == "spanledger"]
    assert point.load() is instrumentation.SpanledgerInstrumentor


def test_either_http_library_satisfies_the_dependency_check():
    assert instrumentation.SpanledgerInstrumentor()._check_dependency_conflicts() is None


def test_environment_configuration():
    config = InstrumentationConfig.resolve(
        environ={
            "SPANLEDGER_CUSTOMER_BAGGAGE_KEY": "tenant",
            "SPANLEDGER_BAGGAGE_ATTRIBUTES": " customer.plan, feature ,",
            "SPANLEDGER_OPENAI_STREAM_USAGE": "false",
            "SPANLEDGER_PROVIDER_HOSTS": "vllm.internal=vllm, LocalHost:11434=ollama",
            "SPANLEDGER_DEFAULT_PROVIDER": "self_hosted",
        }
    )
    assert config.customer_baggage_key == "tenant"
    assert config.baggage_attributes == ("customer.plan", "feature")
    assert config.openai_stream_usage is False
    assert config.provider_hosts == {"vllm.internal": "vllm", "localhost:11434": "ollama"}
    assert config.default_provider == "self_hosted"


def test_arguments_win_over_the_environment():
    config = InstrumentationConfig.resolve(
        customer_baggage_key="org", openai_stream_usage=True, environ={"SPANLEDGER_OPENAI_STREAM_USAGE": "0"}
    )
    assert (config.customer_baggage_key, config.openai_stream_usage) == ("org", True)


def test_bad_environment_values_are_logged_and_defaulted(caplog):
    with caplog.at_level(logging.WARNING):
        config = InstrumentationConfig.resolve(
            environ={"SPANLEDGER_OPENAI_STREAM_USAGE": "maybe", "SPANLEDGER_PROVIDER_HOSTS": "nohost,=x"}
        )
    assert config.openai_stream_usage is True
    assert config.provider_hosts == {}
    assert "SPANLEDGER_OPENAI_STREAM_USAGE" in caplog.text and "SPANLEDGER_PROVIDER_HOSTS" in caplog.text


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="customer_baggage_key"):
        InstrumentationConfig.resolve(customer_baggage_key=" ", environ={})
    with pytest.raises(ValueError, match="provider_hosts"):
        InstrumentationConfig.resolve(provider_hosts={"": "x"}, environ={})
