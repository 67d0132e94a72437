"""The core (models/, explainers/, app/ outside app/ui/) must never import Qt."""

import ast
import subprocess
import sys

from tests.helpers.data import PROJECT_ROOT

QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "qtpy")
CORE_PACKAGES = ("models", "explainers", "app")


def core_files():
    for package in CORE_PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            if "ui" not in path.relative_to(PROJECT_ROOT).parts[1:2]:
                yield path


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_core_file_imports_qt():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {name}"
        for path in core_files()
        for name in imported_modules(path)
        if name.split(".")[0] in QT_MODULES
    ]
    assert list(core_files()), "found no core files: the test is looking in the wrong place"
    assert offenders == []


def test_importing_the_core_loads_no_qt():
    modules = sorted(
        ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
        for path in core_files()
        if path.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_seam_types_load_nothing_heavy():
    """The typed records every layer passes (models.types, explainers.types) import no model,
    explainer, store or GUI library: a view or the PDF can take them without loading torch."""
    heavy = ("torch", "transformers", "shap", "numba", "sqlalchemy", "sklearn", *QT_MODULES)
    code = (
        "import sys, models.types, explainers.types\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
