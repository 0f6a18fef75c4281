"""TLS on both listeners: with SPANLEDGER_TLS_CERT_FILE / SPANLEDGER_TLS_KEY_FILE set, the OTLP exporters
succeed only over TLS, trusting the CA that signed the receiver's certificate; plaintext stores nothing."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from receiver_support import stored_events
from spanfactory import make_spans, otlp_protobuf

from spanledger.exporter.environment_variables import SPANLEDGER_TLS_CERT_FILE, SPANLEDGER_TLS_KEY_FILE
from spanledger.exporter.receiver_grpc import TLSFiles
from spanledger.exporter.server import ReceiverSettings

CALL = {
    "gen_ai.provider.name": "openai",
    "gen_ai.response.id": "chatcmpl-tls",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.usage.output_tokens": 2,
    "customer.id": "acme",
}
KEY = "response:openai:chatcmpl-tls"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, str]:
    """A throwaway CA and a server certificate it signed for localhost and 127.0.0.1 (PEM files)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("spanledger test CA"))
        .issuer_name(_name("spanledger test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files = {
        "ca": ca_cert.public_bytes(serialization.Encoding.PEM),
        "cert": server_cert.public_bytes(serialization.Encoding.PEM),
        "key": server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }
    paths = {}
    for name, content in files.items():
        path = directory / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


@pytest.fixture
def tls_receiver(start_receiver, certificates, monkeypatch):
    """A receiver whose TLS comes from the environment, as ``spanledger serve`` reads it."""
    monkeypatch.setenv(SPANLEDGER_TLS_CERT_FILE, certificates["cert"])
    monkeypatch.setenv(SPANLEDGER_TLS_KEY_FILE, certificates["key"])
    tls = ReceiverSettings.from_environment().tls
    assert tls == TLSFiles(certificates["cert"], certificates["key"])
    return start_receiver(tls=tls)


def test_only_one_of_the_two_variables_serves_without_tls(certificates, caplog):
    settings = ReceiverSettings.from_environment({SPANLEDGER_TLS_CERT_FILE: certificates["cert"]})
    assert settings.tls is None
    assert "TLS needs both" in caplog.text


def test_grpc_with_the_ca_succeeds_and_plaintext_fails(tls_receiver, certificates, engine):
    with open(certificates["ca"], "rb") as ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.read())
    plaintext = GrpcExporter(endpoint=f"127.0.0.1:{tls_receiver.grpc_port}", insecure=True, timeout=2)
    assert plaintext.export(make_spans([CALL])) is SpanExportResult.FAILURE
    assert stored_events(engine) == {}
    for host in ("localhost", "127.0.0.1"):
        client = GrpcExporter(
            endpoint=f"{host}:{tls_receiver.grpc_port}", credentials=credentials, timeout=10
        )
        assert client.export(make_spans([CALL])) is SpanExportResult.SUCCESS
        client.shutdown()
    assert list(stored_events(engine)) == [KEY]


def test_grpc_client_that_does_not_trust_the_ca_fails(tls_receiver, engine):
    client = GrpcExporter(
        endpoint=f"localhost:{tls_receiver.grpc_port}", credentials=grpc.ssl_channel_credentials(), timeout=2
    )
    assert client.export(make_spans([CALL])) is SpanExportResult.FAILURE
    assert stored_events(engine) == {}


def test_http_with_the_ca_succeeds_and_plaintext_fails(tls_receiver, certificates, engine, monkeypatch):
    # requests lets these variables override the exporter's certificate_file (psf/requests#4726).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    port = tls_receiver.http_port
    plaintext = HttpExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
    assert plaintext.export(make_spans([CALL])) is SpanExportResult.FAILURE
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=b"", timeout=5)
    assert stored_events(engine) == {}
    client = HttpExporter(
        endpoint=f"https://localhost:{port}/v1/traces", certificate_file=certificates["ca"], timeout=10
    )
    assert client.export(make_spans([CALL])) is SpanExportResult.SUCCESS
    response = httpx.post(
        f"https://127.0.0.1:{port}/v1/traces",
        content=otlp_protobuf(make_spans([CALL])),
        headers={"content-type": "application/x-protobuf"},
        verify=certificates["ca"],
        timeout=10,
    )
    assert response.status_code == 200
    assert list(stored_events(engine)) == [KEY]


def test_https_client_that_does_not_trust_the_ca_fails(tls_receiver, engine):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.post(f"https://localhost:{tls_receiver.http_port}/v1/traces", content=b"", timeout=5)
    assert stored_events(engine) == {}
