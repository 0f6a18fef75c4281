"""Driving the billing CLI in-process from tests (plain functions; this module holds no tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from spanledger.billing.cli import app

__all__ = ["EXAMPLE_CATALOG", "cli_json", "run_cli"]

EXAMPLE_CATALOG = Path(__file__).parents[2] / "examples" / "catalog.yaml"


def run_cli(url: str, *args: str) -> Result:
    """``spanledger --database-url url *args``; whatever the exit code, never a traceback."""
    result = CliRunner().invoke(app, ["--database-url", url, *args])
    assert "Traceback" not in result.output
    return result


def cli_json(url: str, *args: str) -> Any:
    """The parsed ``--json`` output of a command that must succeed."""
    result = run_cli(url, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
