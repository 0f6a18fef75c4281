"""The shipped Collector configuration is well-formed and points at the receiver's defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from spanledger.exporter.server import DEFAULT_GRPC_ENDPOINT

CONFIG = Path(__file__).resolve().parents[2] / "otel-config.yaml"


def _config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_every_pipeline_references_defined_components():
    config = _config()
    service = config["service"]
    for extension in service["extensions"]:
        assert extension in config["extensions"]
    for pipeline in service["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline[kind]:
                assert name in config[kind], f"{kind} {name} is not defined"


def test_traces_go_to_the_users_backend_and_to_spanledger_with_memory_limit_first():
    traces = _config()["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    assert traces["processors"][0] == "memory_limiter" and "batch" in traces["processors"]
    assert set(traces["exporters"]) == {"otlp/backend", "otlp/spanledger"}


def test_spanledger_exporter_retries_and_queues_on_disk():
    config = _config()
    exporter = config["exporters"]["otlp/spanledger"]
    assert exporter["retry_on_failure"]["enabled"] is True
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    assert queue["storage"] in config["extensions"]
    assert queue["storage"].startswith("file_storage")
    assert queue["storage"] in config["service"]["extensions"]


def test_endpoints_match_the_receiver_defaults():
    config = _config()
    default_port = DEFAULT_GRPC_ENDPOINT.rsplit(":", 1)[1]
    assert config["exporters"]["otlp/spanledger"]["endpoint"].endswith(f":{default_port}}}")
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
