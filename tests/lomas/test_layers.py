"""The import contracts of pyproject.toml (README "Architecture"): an upward import fails `lint-imports`."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lomas", "accounts", "datasets", "budgets", "queries")
# The wiring, which may import anything (lomas/__init__.py and lomas/console/ may too).
UNBOUND = {"lomas.settings", "lomas.urls", "lomas.celery", "lomas.wsgi"}


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {contract["id"]: contract for contract in config["tool"]["importlinter"]["contracts"]}


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project's packages and pyproject.toml."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_untouched_tree_keeps_the_contracts(tree):
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout
    assert "BROKEN" not in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tree):
    services = tree / "accounts" / "services.py"
    services.write_text(
        services.read_text(encoding="utf-8") + "\n\ndef _upward() -> None:\n    import queries.models  # noqa: F401\n",
        encoding="utf-8",
    )
    result = _lint_imports(tree)
    assert result.returncode == 1
    assert "accounts.services -> queries.models" in result.stdout


def test_an_adapter_that_reaches_for_budgets_breaks_the_libraries_contract(tree):
    adapter = tree / "queries" / "libraries" / "smartnoise_sql" / "adapter.py"
    adapter.write_text(adapter.read_text(encoding="utf-8") + "\nfrom budgets.models import Budget\n", encoding="utf-8")
    result = _lint_imports(tree)
    assert result.returncode == 1
    assert "queries.libraries.smartnoise_sql.adapter -> budgets.models" in result.stdout


def test_the_ground_imports_no_wiring(tree):
    selectors = tree / "lomas" / "selectors.py"
    selectors.write_text(selectors.read_text(encoding="utf-8") + "\nfrom lomas.celery import app\n", encoding="utf-8")
    result = _lint_imports(tree)
    assert result.returncode == 1
    assert "lomas.selectors -> lomas.celery" in result.stdout


def test_every_ground_module_is_under_the_ground_contract():
    modules = {f"lomas.{path.stem}" for path in (ROOT / "lomas").glob("*.py") if path.stem != "__init__"}
    assert modules - UNBOUND == set(_contracts()["ground"]["source_modules"])
