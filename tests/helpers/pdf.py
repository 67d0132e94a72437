"""Reading a PDF the app wrote back as text."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader


def text_of(path: Path) -> str:
    """The PDF's text with every run of white space made one space (lines wrap anywhere)."""
    reader = PdfReader(path)
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
