"""The About box: the app's version, the versions of what it runs on, and the embedded model,
LLM and demo data with their licences and credits.

Versions are read from package metadata, never by importing the packages (importing torch
takes seconds and would freeze the window).
"""

from __future__ import annotations

import html
import importlib.metadata
import platform
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.ui.icons import app_icon

PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"
LIBRARIES = ("torch", "transformers", "shap", "scikit-learn", "SQLAlchemy", "reportlab",
             "matplotlib", "numpy")


def app_version() -> str:
    """The installed distribution's version, else the one in the source tree's pyproject."""
    try:
        return importlib.metadata.version("casewise")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        return tomllib.loads(PROJECT_FILE.read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def runtime_versions() -> list[tuple[str, str]]:
    return [("Python", f"{platform.python_version()} ({sys.platform})"),
            ("Qt", qVersion()), ("PySide6", PySide6.__version__),
            *[(name, package_version(name)) for name in LIBRARIES]]


@dataclass(frozen=True)
class EmbeddedDefault:
    """One thing the app ships with: what it is for, its name, licence and carrying package."""

    what: str
    name: str
    licence: str
    package: str


def embedded_defaults() -> list[EmbeddedDefault]:
    """The embedded model, LLM and data: what each is, its licence, and the package that
    carries it (with the installed version)."""
    from models.embedded import BASE_ENCODER, DEMO_DATA, EMBEDDED_LLM, installed_version

    def carried(package) -> str:
        found = installed_version(package)
        state = f"{found} installed" if found else "NOT installed"
        return f"{package.distribution} {package.version} ({state})"

    return [
        EmbeddedDefault(what="Base encoder (fine-tuned into each model)",
                        name="sentence-transformers/all-MiniLM-L6-v2",
                        licence="Apache-2.0 (model); the wrapper package is MIT",
                        package=carried(BASE_ENCODER)),
        EmbeddedDefault(what="Embedded LLM (second opinions)",
                        name="SmolLM2-135M-Instruct (Q4_1 GGUF)", licence="Apache-2.0",
                        package=carried(EMBEDDED_LLM)),
        EmbeddedDefault(what="Demo data (the default model's training data)",
                        name="UCI Drug Review data set, a 600/379-review sample (drugs.com "
                             "reviews; Gräßer, Kallumadi, Malberg and Zaunseder, 2018)",
                        licence="CC BY 4.0 (UCI Machine Learning Repository); the package "
                                "declares none",
                        package=carried(DEMO_DATA)),
    ]


def about_html() -> str:
    esc = html.escape
    versions = "".join(f"<tr><td>{esc(n)}</td><td>{esc(v)}</td></tr>"
                       for n, v in runtime_versions())
    embedded = "".join(
        f"<p><b>{esc(d.what)}</b><br>{esc(d.name)}<br>Licence: {esc(d.licence)}<br>"
        f"Package: {esc(d.package)}</p>" for d in embedded_defaults())
    return (f"<h2>Casewise {esc(app_version())}</h2>"
            "<p>Decision support for reviewers: a small classifier fine-tuned on this machine "
            "decides each case with calibrated probabilities, SHAP word attributions show why, "
            "uncertain cases are escalated to an LLM second opinion, and a person signs every "
            "decision in a hash-chained case history. Nothing leaves the machine unless you "
            "point the LLM at a server.</p>"
            f"<h3>Embedded model, LLM and data</h3>{embedded}"
            f"<h3>Running on</h3><table cellpadding='2'>{versions}</table>"
            "<p>Qt and PySide6 are used under the LGPL-3.0.</p>")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Casewise")
        self.setWindowIcon(app_icon())
        self.resize(620, 640)
        layout = QVBoxLayout(self)
        header = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(64, 64))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        header.addWidget(logo)
        self.text = QTextBrowser(objectName="aboutText")
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(about_html())
        header.addWidget(self.text, 1)
        layout.addLayout(header)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        about_qt = QPushButton("About Qt")
        about_qt.clicked.connect(lambda: QMessageBox.aboutQt(self))
        buttons.addButton(about_qt, QDialogButtonBox.ButtonRole.HelpRole)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)


def show_about(parent: QWidget | None = None) -> AboutDialog:
    dialog = AboutDialog(parent)
    dialog.show()
    return dialog
