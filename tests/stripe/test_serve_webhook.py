"""``spanledger serve`` mounts the Stripe webhook beside /v1/traces when a signing secret is set."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(tmp_path, secret: str | None):
    port = _free_port()
    env = {**os.environ, "SPANLEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    env.pop("SPANLEDGER_STRIPE_WEBHOOK_SECRET", None)
    if secret:
        env["SPANLEDGER_STRIPE_WEBHOOK_SECRET"] = secret
    spanledger = Path(sys.executable).parent / "spanledger"
    process = subprocess.Popen(
        [str(spanledger), "serve", "--grpc", "off", "--http", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process, port
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode()) from None
            time.sleep(0.1)
    process.kill()
    raise AssertionError("spanledger serve did not start")


@pytest.mark.parametrize(("secret", "expected"), [("whsec_test", 400), (None, 404)])
def test_webhook_route_follows_the_signing_secret(tmp_path, secret, expected):
    process, port = _serve(tmp_path, secret)
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/stripe/webhook",
            content=b'{"id": "evt_1", "type": "invoice.paid"}',
            headers={"stripe-signature": "t=1,v1=forged"},
            timeout=10,
        )
        assert response.status_code == expected
        traces = httpx.post(
            f"http://127.0.0.1:{port}/v1/traces",
            content=b"",
            headers={"content-type": "application/x-protobuf"},
            timeout=10,
        )
        assert traces.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
