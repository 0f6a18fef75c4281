"""The README's first command runs examples/demo/run.sh: the whole path, checked against the LLM server.

The example server logs every answer it sent (``served.jsonl`` in ``DEMO_DIR``); the app prints the
response id of every call with the customer it made it for. The billed figures the script prints must
equal what the server returned, customer by customer and model by model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]
DEMO = ROOT / "examples" / "demo"
BIN = Path(sys.executable).parent

_APP_LINE = re.compile(
    r"^\[(?P<customer>[\w-]+)\] +(?P<model>\S+) +(?P<mode>json|stream) +id=(?P<id>\S+)", re.M
)
_TABLE_ROW = re.compile(r"^│ (?P<customer>[\w-]+) +│ (?P<model>[\w.-]+) +│ (?P<value>\d+) +│$", re.M)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMO / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run_demo(demo_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEMO / "run.sh")],
        cwd=ROOT,
        env={
            **os.environ,
            "SPANLEDGER": str(BIN / "spanledger"),
            "DEMO_DIR": str(demo_dir),
            "COLUMNS": "100",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=240,
    )


def _section(output: str, title: str) -> str:
    start = output.index(f"== {title}")
    end = output.find("\n== ", start + 1)
    return output[start : end if end != -1 else None]


def _table_after(text: str, title: str) -> dict[tuple[str, str], int]:
    """The ``customer │ model │ value`` rows of the first table whose title starts with ``title``."""
    start = text.index(title)
    end = text.index("└", start)
    return {(m["customer"], m["model"]): int(m["value"]) for m in _TABLE_ROW.finditer(text[start:end])}


# The end-to-end run takes 30-75 s (about 20 CLI processes, the receiver, the app under
# opentelemetry-instrument), so it runs with the slow tests (`pytest -m slow`, and in CI).
_end_to_end = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    demo_dir = tmp_path_factory.mktemp("demo")
    return _run_demo(demo_dir), demo_dir


@_end_to_end
def test_demo_bills_each_customer_exactly_what_the_server_returned(demo):
    result, demo_dir = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    served = {
        entry["id"]: entry for entry in map(json.loads, (demo_dir / "served.jsonl").read_text().splitlines())
    }
    calls = list(_APP_LINE.finditer(result.stdout))
    assert {m["mode"] for m in calls} == {"json", "stream"}
    assert {m["customer"] for m in calls} == {"acme", "globex"}
    assert sorted(m["id"] for m in calls) == sorted(served)  # every answer was one call of the app

    tokens: Counter[tuple[str, str]] = Counter()
    cached: Counter[tuple[str, str]] = Counter()
    for call in calls:
        usage = served[call["id"]]["usage"]
        key = (call["customer"], served[call["id"]]["model"])
        tokens[key] += usage["total_tokens"]
        cached[key] += usage["prompt_tokens_details"]["cached_tokens"]
    assert all(cached.values())  # the example server's prompt cache did report cached tokens

    usage_section = _section(result.stdout, "Usage per customer and model")
    assert _table_after(usage_section, "tokens from") == dict(tokens)
    assert _table_after(usage_section, "cached-input from") == dict(cached)
    assert f"The example server answered {len(served)} calls; {len(served)} usage events" in result.stdout


@_end_to_end
def test_demo_invoice_prices_the_served_tokens_by_the_plan(demo):
    result, demo_dir = demo
    assert result.returncode == 0, result.stderr
    served = [json.loads(line) for line in (demo_dir / "served.jsonl").read_text().splitlines()]
    acme_tokens = sum(e["usage"]["total_tokens"] for e in served if e["model"] == "gpt-4o")
    # acme is on Writer (examples/catalog.yaml): $29 base fee, 50,000 tokens included, $0.02 per 1,000.
    overage = (Decimal(acme_tokens) - 50_000) * Decimal("0.02") / 1000
    assert overage > 0  # the demo is sized so acme pays usage
    overage = overage.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    invoices = _section(result.stdout, "Invoice preview")
    acme_invoice = invoices[invoices.index("· acme ·") : invoices.index("· globex ·")]
    assert re.search(rf"│ tokens usage +│ {acme_tokens} +│ 0\.02 +│ {overage} +│", acme_invoice)
    assert f"Total USD: {Decimal(29) + overage}" in acme_invoice
    margins = _section(result.stdout, "Margin per customer")
    assert re.search(rf"│ acme +│ {Decimal(29) + overage} +│", margins)


@_end_to_end
def test_demo_portal_links_open_while_the_demo_runs(demo):
    result, _ = demo
    assert result.returncode == 0, result.stderr
    if "== Customer portal" not in result.stdout:
        pytest.skip("this build has no `spanledger portal-link`; run.sh then prints no portal section")
    portal = _section(result.stdout, "Customer portal")
    links = re.findall(r"^(acme|globex): (http://127\.0\.0\.1:\d+/\S+)$", portal, re.M)
    assert [customer for customer, _ in links] == ["acme", "globex"]
    assert portal.count("the page answers HTTP 200") == 2


@_end_to_end
def test_demo_stops_every_process_it_started(demo):
    result, _ = demo
    assert result.returncode == 0, result.stderr
    ports = re.search(
        r"OTLP/gRPC 127\.0\.0\.1:(\d+), OTLP/HTTP 127\.0\.0\.1:(\d+), example LLM server 127\.0\.0\.1:(\d+)",
        result.stdout,
    )
    assert ports is not None
    for port in map(int, ports.groups()):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


@_end_to_end
def test_demo_stopped_midway_stops_what_it_started(tmp_path):
    process = subprocess.Popen(
        ["bash", str(DEMO / "run.sh")],
        cwd=ROOT,
        env={**os.environ, "SPANLEDGER": str(BIN / "spanledger"), "DEMO_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports = None
        for line in process.stdout:
            ports = ports or re.search(
                r"OTLP/gRPC 127\.0\.0\.1:(\d+), .* example LLM server 127\.0\.0\.1:(\d+)", line
            )
            if line.startswith("== Catalog"):
                break
        assert ports is not None
        process.terminate()
        assert process.wait(timeout=60) == 143
    finally:
        if process.poll() is None:
            process.kill()
    for port in map(int, ports.groups()):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_demo_without_spanledger_installed_says_how_to_install(tmp_path):
    result = _run_demo(tmp_path, SPANLEDGER=str(tmp_path / "no-such-venv" / "spanledger"))
    assert result.returncode == 1
    assert "install first" in result.stderr and "pip install -q -e '.[demo]'" in result.stderr
    assert not (tmp_path / "served.jsonl").exists()


def test_demo_without_the_openai_sdk_says_which_extra_to_install(tmp_path):
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexit 1\n")  # a Python without the openai package
    fake_python.chmod(0o755)
    result = _run_demo(tmp_path, PYTHON=str(fake_python))
    assert result.returncode == 1
    assert "needs the openai SDK" in result.stderr and "'.[demo]'" in result.stderr


# The example server's wire format: the demo's checks are only as good as its answers.


@pytest.fixture
def llm_client(tmp_path):
    from starlette.testclient import TestClient

    server_module = _load("llm_server")
    server = server_module.ChatServer(log_path=tmp_path / "served.jsonl")
    with TestClient(server_module.create_app(server)) as client:
        yield client, tmp_path / "served.jsonl"


def _chat(client, **body):
    messages = body.pop("messages", [{"role": "user", "content": "Hello there"}])
    return client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": messages, **body},
        headers={"Authorization": "Bearer demo"},
    )


def test_example_server_json_answer_carries_usage_and_is_logged(llm_client):
    client, log = llm_client
    response = _chat(client)
    assert response.status_code == 200
    body = response.json()
    usage = body["usage"]
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert json.loads(log.read_text()) == {
        "id": body["id"],
        "model": "gpt-4o",
        "stream": False,
        "include_usage": False,
        "usage": usage,
    }


def test_example_server_caches_long_prefixes_in_steps_of_128(llm_client):
    client, _ = llm_client
    document = {"role": "user", "content": "clause " * 1200}  # about 1,800 tokens
    first = _chat(client, messages=[document, {"role": "user", "content": "Question one?"}]).json()
    second = _chat(client, messages=[document, {"role": "user", "content": "Question two?"}]).json()
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and cached % 128 == 0 and cached < second["usage"]["prompt_tokens"]
    short = _chat(client, messages=[{"role": "user", "content": "hi"}, {"role": "user", "content": "y"}])
    assert short.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0  # under 1,024 tokens


def _sse_events(response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]


def test_example_server_stream_sends_usage_only_when_asked(llm_client):
    client, log = llm_client
    plain = _sse_events(_chat(client, stream=True))
    asked = _sse_events(_chat(client, stream=True, stream_options={"include_usage": True}))
    assert plain[-1] == asked[-1] == "[DONE]"
    assert all("usage" not in json.loads(event) for event in plain[:-1])
    chunks = [json.loads(event) for event in asked[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["stream"], e["include_usage"]) for e in logged] == [(True, False), (True, True)]
    assert logged[1]["usage"] == chunks[-1]["usage"]


def test_example_server_max_tokens_cuts_the_reply(llm_client):
    client, _ = llm_client
    body = _chat(client, max_tokens=5).json()
    assert body["usage"]["completion_tokens"] == 5 and body["choices"][0]["finish_reason"] == "length"


def test_example_server_rejects_missing_key_and_bad_body(llm_client):
    client, log = llm_client
    unauthorised = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert unauthorised.status_code == 401 and unauthorised.json()["error"]["code"] == "missing_api_key"
    bad = client.post("/v1/chat/completions", content=b"{", headers={"Authorization": "Bearer demo"})
    assert bad.status_code == 400 and "model" in bad.json()["error"]["message"]
    assert not log.exists()  # nothing was answered, nothing logged


def test_loopback_helper_finds_free_ports_and_waits_for_them():
    loopback = _load("loopback")
    found = loopback.free_ports(3)
    assert len(set(found)) == 3
    assert loopback.wait_for_ports([found[0]], timeout=0.3) is False
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert loopback.wait_for_ports([listener.getsockname()[1]], timeout=5) is True
    with pytest.raises(OSError):
        loopback.fetch_status(f"http://127.0.0.1:{found[1]}/", timeout=2)  # nothing listens there
