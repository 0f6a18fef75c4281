"""``spanledger portal-link`` and the portal on ``spanledger serve`` (a real server process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from spanledger.billing.cli import app
from spanledger.billing.customers import create_customer
from spanledger.billing.db import create_engine_from_url, make_session_factory
from spanledger.billing.portal import require_secret_key, verify_portal_token

SECRET = "cli-test-secret-key-0123456789"
ADMIN = "cli-admin-token-0123456789"


def run(url: str, *args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, ["--database-url", url, *args], env=env)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def db(database_url):
    assert run(database_url, "db", "upgrade").exit_code == 0
    engine = create_engine_from_url(database_url)
    with make_session_factory(engine)() as session, session.begin():
        create_customer(session, "acme", name="Acme Inc.")
    engine.dispose()
    return database_url


def test_portal_link_prints_a_signed_url_that_expires_when_asked(db):
    before = datetime.now(UTC)
    result = run(db, "portal-link", "acme", "--expires", "2d", "--base-url", "https://billing.example/",
                 env={"SPANLEDGER_SECRET_KEY": SECRET})  # fmt: skip
    assert result.exit_code == 0, result.output
    url = result.stdout.strip().splitlines()[0]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "billing.example", "/portal")
    query = parse_qs(parts.query)
    assert query["customer"] == ["acme"]
    grant = verify_portal_token(require_secret_key(SECRET), query["token"][0], "acme", before)
    assert (
        before + timedelta(days=2) - timedelta(seconds=5)
        <= grant.expires_at
        <= before + timedelta(days=2, seconds=5)
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["acme"], {"SPANLEDGER_SECRET_KEY": ""}, "SPANLEDGER_SECRET_KEY is not set"),
        (["acme"], {"SPANLEDGER_SECRET_KEY": "short"}, "at least 16 characters"),
        (["nobody"], {"SPANLEDGER_SECRET_KEY": SECRET}, "no customer 'nobody'"),
        (["acme", "--expires", "soon"], {"SPANLEDGER_SECRET_KEY": SECRET}, "not a duration"),
    ],
)
def test_portal_link_errors_are_one_sentence(db, args, env, message):
    result = run(db, "portal-link", *args, env=env)
    assert result.exit_code == 1 and message in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "SPANLEDGER_DATABASE_URL": url, "SPANLEDGER_SECRET_KEY": SECRET,
           "SPANLEDGER_ADMIN_TOKEN": ADMIN}  # fmt: skip
    spanledger = Path(sys.executable).parent / "spanledger"
    process = subprocess.Popen(
        [str(spanledger), "serve", "--grpc", "off", "--http", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base, timeout=1)
            return process, base
        except httpx.TransportError:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode()) from None
            time.sleep(0.1)
    process.kill()
    raise AssertionError("spanledger serve did not start")


def test_serve_mounts_the_portal_and_the_admin_view(db):
    process, base = _serve(db)
    try:
        link = run(db, "portal-link", "acme", "--base-url", base, env={"SPANLEDGER_SECRET_KEY": SECRET})
        url = link.stdout.strip().splitlines()[0]
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "Usage and billing — Acme Inc." in page.text
        assert httpx.get(url[:-3] + "abc", timeout=10).status_code == 403
        assert httpx.get(f"{base}/admin", timeout=10).status_code == 403
        admin = httpx.get(f"{base}/admin", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert admin.status_code == 200 and "Cost Insights" in admin.text
    finally:
        process.terminate()
        process.wait(timeout=30)
