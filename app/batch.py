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


def read_case_text(path: str | Path, encoding: str | None = None) -> str:
    """One case from a whole text file (``-``: standard input), for ``predict --file`` and
    ``explain --file``: a long case does not fit on a command line (the OS limits its
    length), and a file keeps its line breaks exactly."""
    import sys

    if str(path) == "-":
        return sys.stdin.read()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if b"\x00" in data[:8192] and not (encoding or "").lower().startswith("utf-16"):
        raise DataError(f"{path} looks like a binary file, not text; give a .txt file.")
    try:
        return data.decode(encoding or "utf-8-sig")
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"{path} is not {encoding or 'UTF-8'} text ({exc}); give its "
                        "encoding with --encoding (for example cp1252).") from exc

