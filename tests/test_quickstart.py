"""The README's first quick-start command runs examples/quickstart/run.sh: it must work as shipped."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_quickstart_script_imports_meters_and_prints_usage(tmp_path):
    spanledger = Path(sys.executable).parent / "spanledger"
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "quickstart" / "run.sh")],
        cwd=tmp_path,
        env={**os.environ, "SPANLEDGER": str(spanledger), "SPANLEDGER_DATABASE_URL": "sqlite:///quickstart.db"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "60 stored" in result.stdout and "0 stored, 60 already present" in result.stdout
    usage = json.loads(result.stdout[result.stdout.rindex('{\n  "meter"') :])
    assert usage["meter"] == "openai-calls"
    assert sum(int(row["value"]) for row in usage["rows"]) == 34
