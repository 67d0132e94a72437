"""Reading a batch of cases: a CSV/TSV/JSONL file (one case per row) or a folder of .txt files.

Scoring them is the case pipeline's (``app.pipeline.run_batch``), the same for
``python main.py score`` and the desktop app's batch import.
"""

from __future__ import annotations

from pathlib import Path

from models.errors import DataError
from models.types import CaseInput


def read_cases(path: Path, text_col: str | None = None,
               encoding: str | None = None) -> list[CaseInput]:
    """The cases of a CSV/TSV/JSONL file (one per row) or of a folder of .txt files (one per
    file), each with where it came from; empty texts are dropped."""
    from models.data import load_texts

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path} holds no .txt files to score.")
        found = [CaseInput(f.read_text(encoding=encoding or "utf-8"), f.name) for f in files]
    else:
        texts = load_texts(path, text_col, encoding)
        found = [CaseInput(text, f"{path.name}:{row}")
                 for row, text in enumerate(texts, start=1)]
    return [case for case in found if case.text.strip()]
