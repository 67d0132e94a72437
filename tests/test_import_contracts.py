"""The architecture contracts hold: import-linter's `lint-imports`, as `make lint` runs it,
over [tool.importlinter] in pyproject.toml (Qt only in app.ui; app.ui above the rest of app,
app above explainers above models). Each contract is also shown to catch a planted import,
so a contract that checks nothing cannot pass unnoticed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.data import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("importlinter") is None or not LINT_IMPORTS.exists():
        pytest.skip(f"import-linter is not installed in {Path(sys.executable).parent.parent} "
                    "(it is in requirements.lock and the dev extra: run `make install`)")
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", *args], cwd=root,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("path, code, contract", [
    ("models/_planted.py", "def f():\n    import PySide6.QtCore\n", "qt-only-in-ui"),
    ("explainers/_planted.py", "import shiboken6\n", "qt-only-in-ui"),
    ("app/store/_planted.py", "def f():\n    from PySide6 import QtWidgets\n", "qt-only-in-ui"),
    ("app/_planted.py", "def f():\n    from app.ui import theme\n", "ui-on-top"),
    ("explainers/_planted.py", "def f():\n    import app.settings\n", "layers"),
    ("models/_planted.py", "from explainers import words\n", "layers"),
])
def test_a_planted_import_breaks_its_contract(tmp_path, path, code, contract):
    for package in ("app", "models", "explainers"):
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / path).write_text(code, encoding="utf-8")
    result = lint_imports(tmp_path, "--contract", contract)
    planted = path.removesuffix(".py").replace("/", ".")
    assert result.returncode == 1 and "BROKEN" in result.stdout, result.stdout + result.stderr
    assert planted in result.stdout  # broken by the planted import, not by something else
