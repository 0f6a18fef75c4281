"""The README's scripted scenario (examples/scenario/run.sh) runs as shipped and prints invoices whose
totals match the hand computation in docs/billing.md, to the cent."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SPANLEDGER = Path(sys.executable).parent / "spanledger"

#: docs/billing.md, "Scripted scenario": the hand computation of each November 2026 invoice.
EXPECTED_TOTALS = {
    "acme": Decimal("30.40"),  # Writer 29.00 + (120,000 − 50,000) × 0.02/1,000 = 1.40
    "globex": Decimal("125.25"),  # Team 99.00 + 2 extra seats × 12 + (400,000 − 250,000) × 0.015/1,000
    "initech": Decimal("167.00"),  # Writer 14.50 + Agency 149.50 (half a month each) + 300,000 × 0.01/1,000
}


def run_scenario(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPANLEDGER": str(SPANLEDGER), "SPANLEDGER_DATABASE_URL": url, "COLUMNS": "120"}
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "scenario" / "run.sh")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def invoice_totals(url: str) -> dict[str, Decimal]:
    listed = subprocess.run(
        [str(SPANLEDGER), "--database-url", url, "invoices", "list", "--period", "2026-11", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {row["customer"]: Decimal(row["total"]) for row in json.loads(listed.stdout)}


def check(result: subprocess.CompletedProcess[str], url: str) -> None:
    output = result.stdout
    assert "Nothing to change" in output  # the second apply of the catalog is a no-op
    assert "7 stored" in output
    for line in ("Writer base fee (prorated)", "Agency base fee (prorated)", "Team extra seats"):
        assert line in output
    for total in EXPECTED_TOTALS.values():
        assert f"Total USD: {total}" in output
    assert invoice_totals(url) == EXPECTED_TOTALS


def test_scenario_prints_invoices_checkable_by_hand(tmp_path):
    url = "sqlite:///scenario.db"
    result = run_scenario(tmp_path, url)
    check(result, f"sqlite:///{tmp_path / 'scenario.db'}")


@pytest.mark.slow
def test_scenario_on_postgresql(tmp_path, postgres_url):
    check(run_scenario(tmp_path, postgres_url), postgres_url)
