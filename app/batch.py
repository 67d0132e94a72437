"""Reading a batch of cases: a CSV/TSV/JSONL file (one case per row) or a folder of .txt files.

Scoring them is the case pipeline's (``app.pipeline.run_batch``), the same for
``python main.py score`` and the desktop app's batch import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from models.errors import DataError
from models.types import CaseInput

ID_SHOWN_CHARS = 40  # of a row's own id in the case's source, which lists show in full


def read_cases(path: Path, text_col: str | None = None, encoding: str | None = None,
               keep: Sequence[str] | None = None) -> list[CaseInput]:
    """The cases of a CSV/TSV/JSONL file (one per row) or of a folder of .txt files (one per
    file), each with where it came from; empty texts are dropped. A row's other columns
    named in ``keep`` (default: all of them) become the case's metadata, and its own id, when
    a kept column is one, joins the source ("cases.csv:19 (id 4471)"): the file's id is how
    its owner finds the case again."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path} holds no .txt files to score.")
        found = [CaseInput(f.read_text(encoding=encoding or "utf-8"), f.name) for f in files]
    else:
        found = _table_cases(path, text_col, encoding, keep)
    return [case for case in found if case.text.strip()]


def _table_cases(path: Path, text_col: str | None, encoding: str | None,
                 keep: Sequence[str] | None) -> list[CaseInput]:
    from models.data import clean_text, read_table, require_columns

    table = read_table(path, encoding)
    column = text_col or _text_column(table.columns, table.rows, path)
    kept = [c for c in (table.columns if keep is None else keep) if c != column]
    require_columns(table, str(path), column, *kept)
    id_col = id_column(kept)
    cases = []
    for number, row in enumerate(table.rows, start=1):
        metadata = {c: (row.get(c) or "").strip() for c in kept}
        cases.append(CaseInput(clean_text(row.get(column)),
                               _source(path.name, number, metadata.get(id_col or "")),
                               metadata))
    return cases


def _text_column(columns: Sequence[str], rows: Sequence[dict], path: Path) -> str:
    from models.data import guess_text_column

    column = guess_text_column(list(columns), list(rows))
    if column is None:
        raise DataError(f"{path}: which column holds the text? Columns found: "
                        f"{', '.join(repr(c) for c in columns)}. Pass it with --text-col.")
    return column


def id_column(columns: Sequence[str]) -> str | None:
    """The column that names a row: "id" itself, else the first "case_id", "case id",
    "caseId" or "CaseID" one (not any name ending in "id": "covid", "paid")."""
    exact = [c for c in columns if c.strip().lower() == "id"]
    named = [c for c in columns if _names_an_id(c.strip())]
    return (exact or named or [None])[0]


def _names_an_id(name: str) -> bool:
    """``patient_id``, ``patient id``, ``patientId``, ``patientID``; not ``PAID`` or ``COVID``."""
    return name.lower().replace(" ", "_").replace("-", "_").endswith("_id") or \
        re.search(r"[a-z]I[dD]$", name) is not None


def _source(file_name: str, row: int, row_id: str | None) -> str:
    if not row_id:
        return f"{file_name}:{row}"
    return f"{file_name}:{row} (id {row_id[:ID_SHOWN_CHARS]})"


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

