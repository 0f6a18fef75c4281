"""Coverage-guided fuzzing (atheris/libFuzzer) of OTLP decoding and mapping, bounded in runs and time.

The target runs in a subprocess (libFuzzer exits the process when it finishes) from a seed corpus of real
requests, protobuf and JSON, with good and bad spans; a crash makes the subprocess fail with the input
and traceback in its output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from otlp_fuzz_inputs import (
    attribute,
    good_span,
    json_bytes,
    protobuf_request,
    request_document,
    span_document,
)

pytest.importorskip("atheris", reason="atheris is in the test extra (binary wheels: Linux x86_64)")

pytestmark = pytest.mark.slow

TARGET = Path(__file__).with_name("atheris_otlp_target.py")
RUNS = 30_000
MAX_SECONDS = 90


def _seed_corpus(directory: Path) -> None:
    spans = [
        good_span(0, "acme", 120, 7),
        good_span(1, "globex", 5, 0),
        span_document(2, [attribute("gen_ai.usage.input_tokens", {"intValue": "-3"})]),
        span_document(
            3,
            [
                attribute("gen_ai.provider.name", {"stringValue": "anthropic"}),
                attribute("gen_ai.usage.cache_read.input_tokens", {"intValue": "40"}),
                attribute("gen_ai.usage.input_tokens", {"doubleValue": 12.5}),
                attribute("customer.id", {"arrayValue": {"values": [{"stringValue": "x"}]}}),
            ],
        ),
    ]
    directory.mkdir()
    (directory / "protobuf").write_bytes(b"\x00" + protobuf_request(spans))
    (directory / "json").write_bytes(b"\x01" + json_bytes(request_document(spans)))
    (directory / "json-empty").write_bytes(b'\x01{"resourceSpans": []}')


def test_libfuzzer_finds_no_crash_in_decoding_and_mapping(tmp_path):
    corpus = tmp_path / "corpus"
    _seed_corpus(corpus)
    result = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            f"-runs={RUNS}",
            f"-max_total_time={MAX_SECONDS}",
            "-max_len=8192",
            "-rss_limit_mb=1024",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 60,
        cwd=TARGET.parent,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done" in output and "runs in" in output  # libFuzzer's own summary: it really ran
