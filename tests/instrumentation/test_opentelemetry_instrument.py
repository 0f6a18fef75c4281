"""``opentelemetry-instrument python app.py``: loaded from the entry point with no code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    import sys
    import openai
    from spanledger.instrumentation import customer

    client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="k", max_retries=0)
    with customer("acme"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        for _ in client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    """
)


def run_app(tmp_path: Path, server_url: str, **extra_env: str) -> list[dict]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "app-under-test",
        **extra_env,
    }
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    done = subprocess.run(
        [str(instrument), sys.executable, str(app), server_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return _console_spans(done.stdout)


def _console_spans(output: str) -> list[dict]:
    """The console exporter prints one indented JSON object per span."""
    spans, decoder, position = [], json.JSONDecoder(), 0
    while (start := output.find("{", position)) >= 0:
        span, position = decoder.raw_decode(output, start)
        spans.append(span)
    return spans


def test_spans_appear_under_opentelemetry_instrument(tmp_path, llm_server):
    spans = run_app(tmp_path, llm_server.url)
    ours = [s for s in spans if s["name"] == "chat gpt-4o"]
    assert len(ours) == 2
    for span in ours:
        assert span["kind"] == "SpanKind.CLIENT"
        assert span["attributes"]["customer.id"] == "acme"
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 1200
        assert span["attributes"]["gen_ai.usage.output_tokens"] == 300
    assert llm_server.requests[1].json()["stream_options"] == {"include_usage": True}


@pytest.mark.slow  # another ~10 s interpreter start-up under opentelemetry-instrument
def test_disabled_by_otel_python_disabled_instrumentations(tmp_path, llm_server):
    spans = run_app(tmp_path, llm_server.url, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="spanledger")
    assert not [s for s in spans if s["name"] == "chat gpt-4o"]
    assert "stream_options" not in llm_server.requests[1].json()
