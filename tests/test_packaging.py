"""The distribution maps the three folders into the spanledger namespace, and nothing is left out."""

import tomllib
from pathlib import Path

import spanledger.billing
import spanledger.exporter
import spanledger.instrumentation

ROOT = Path(__file__).parents[1]
FOLDERS = {
    "billing": "spanledger.billing",
    "exporter": "spanledger.exporter",
    "instrumentation": "spanledger.instrumentation",
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_python_package_folder_is_listed_in_pyproject():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([package, *relative.parts]))
    assert on_disk == listed, (
        f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}; stale: {sorted(listed - on_disk)}"
    )


def test_the_folders_are_imported_as_spanledger_subpackages():
    for module, folder in (
        (spanledger.billing, "billing"),
        (spanledger.exporter, "exporter"),
        (spanledger.instrumentation, "instrumentation"),
    ):
        assert Path(module.__file__).parent == ROOT / folder


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"
    assert f"```bash\n{command}\n```" in readme
    assert f'run_pytest bash -c "{command}"' in ci


def test_every_environment_variable_is_in_the_readme_table():
    import re

    readme = (ROOT / "README.md").read_text()
    modules = [p for p in ROOT.glob("*/**/environment_variables.py") if ".venv" not in p.parts]
    assert len(modules) >= 4
    names = {n for p in modules for n in re.findall(r"^(SPANLEDGER_[A-Z_]+) = ", p.read_text(), re.M)}
    assert names, "no variables found"
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"document these in the README's Configuration table: {missing}"
