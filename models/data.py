"""Reading labelled and unlabelled texts from the user's files and from the demo data.

Supported: CSV, TSV and JSON lines (by suffix; other suffixes are sniffed). Files must be UTF-8
unless an encoding is given; anything else is detected and named in the error, never guessed
silently, because a wrong guess corrupts every accented word the model learns from.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from models.embedded import DEMO_DATA, demo_data_zip
from models.errors import DataError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON_LINES_SUFFIXES = {".jsonl", ".ndjson"}
SPREADSHEET_SUFFIXES = {".xlsx", ".xls", ".ods", ".numbers"}
DEMO_NAME = "drugs.com reviews (UCI Drug Review data, Gräßer et al. 2018; explabox demo sample)"
DEMO_TEXT_COLUMN, DEMO_LABEL_COLUMN = "review", "rating"


@dataclass(frozen=True)
class Table:
    """Rows of a file as dictionaries, with the column names found and how it was decoded."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    encoding: str
    sha256: str


@dataclass(frozen=True)
class LabeledTexts:
    """Cleaned texts with their labels and the 1-based row numbers they came from."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    row_numbers: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> LabeledTexts:
        return LabeledTexts(
            tuple(self.texts[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            tuple(self.row_numbers[i] for i in indices),
        )

    def class_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))


@dataclass(frozen=True)
class LoadReport:
    """What happened to the rows of one file on the way in."""

    source: str
    sha256: str
    encoding: str
    rows_read: int
    rows_kept: int
    dropped_empty_text: int
    dropped_missing_label: int
    dropped_duplicates: int
    conflicting_duplicates: int

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def clean_text(raw: str | None) -> str:
    """Decode HTML entities, and strip whitespace and quotes that wrap the whole text."""
    text = html.unescape(raw or "").strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def decode_bytes(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Return the text and the encoding used; refuse binary files and non-UTF-8 guesses."""
    if b"\x00" in data[:8192]:
        raise DataError(
            f"{source} looks like a binary file, not a text table. "
            "Export it as CSV, TSV or JSON lines (UTF-8) and try again."
        )
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"{source} cannot be read as {encoding}: {exc}") from exc
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        guess = from_bytes(data).best()
        named = guess.encoding if guess else "an unknown encoding"
        raise DataError(
            f"{source} is not UTF-8 text (byte {exc.start} is invalid; it looks like {named}). "
            f"Re-save it as UTF-8, or pass --encoding {guess.encoding if guess else 'NAME'}."
        ) from exc


def read_table(path: str | Path, encoding: str | None = None) -> Table:
    """Read a CSV, TSV or JSON-lines file into rows of strings."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_SUFFIXES:
        raise DataError(f"{path} is a spreadsheet. Export it as CSV (UTF-8) and try again.")
    data = path.read_bytes()
    text, used = decode_bytes(data, str(path), encoding)
    digest = hashlib.sha256(data).hexdigest()
    if suffix in JSON_LINES_SUFFIXES:
        columns, rows = _parse_json_lines(text, path)
    else:
        columns, rows = _parse_delimited(text, path, DELIMITED_SUFFIXES.get(suffix))
    if not rows:
        raise DataError(f"{path} has no data rows (only a header, or nothing at all).")
    return Table(tuple(columns), tuple(rows), used, digest)


def _parse_delimited(text: str, path: Path, delimiter: str | None) -> tuple[list[str], list]:
    if delimiter is None:
        delimiter = _sniff_delimiter(text, path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return [], []
        columns = [name.strip() for name in header]
        rows, ragged = [], []
        line = reader.line_num  # the line the next row starts on, less one
        for values in reader:
            if any(v.strip() for v in values):
                # Extra fields that are all empty (a trailing delimiter) lose nothing.
                width = len(values) if any(v.strip() for v in values[len(columns):]) \
                    else min(len(values), len(columns))
                if width != len(columns):
                    ragged.append((line + 1, len(values)))
                rows.append(_row_dict(columns, values))
            line = reader.line_num
    except csv.Error as exc:
        raise DataError(f"{path} is not a well-formed delimited table: {exc}") from exc
    if ragged:
        raise DataError(_ragged_message(path, delimiter, len(columns), ragged))
    return columns, rows


RAGGED_SHOWN = 5


def _ragged_message(path: Path, delimiter: str, width: int, ragged: list[tuple[int, int]]) -> str:
    """Rows with more or fewer fields than the header: a field was split or lost, so which
    value belongs to which column is a guess. Refuse them, by line, as broken JSON lines are."""
    named = {",": "comma", "\t": "tab", ";": "semicolon", "|": "bar"}.get(delimiter,
                                                                         repr(delimiter))
    shown = ", ".join(f"line {line} has {n}" for line, n in ragged[:RAGGED_SHOWN])
    more = f", and {len(ragged) - RAGGED_SHOWN} more" if len(ragged) > RAGGED_SHOWN else ""
    rows = "row does" if len(ragged) == 1 else f"{len(ragged)} rows do"
    return (
        f"{path}: {rows} not have the header's {width} {named}-separated fields "
        f"({shown}{more}). A value that contains a {named} or a line break must be in double "
        "quotes; fix those lines (or export the file again as CSV or TSV) and try again."
    )


def _sniff_delimiter(text: str, path: Path) -> str:
    try:
        return csv.Sniffer().sniff(text[:16384], delimiters=",\t;|").delimiter
    except csv.Error as exc:
        raise DataError(
            f"{path} does not look like a table. Use a CSV or TSV file with a header row, "
            "or JSON lines (.jsonl), one object per line."
        ) from exc


def _row_dict(columns: list[str], values: list[str]) -> dict[str, str]:
    return {name: (values[i] if i < len(values) else "") for i, name in enumerate(columns)}


def _parse_json_lines(text: str, path: Path) -> tuple[list[str], list]:
    columns: dict[str, None] = {}
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {number}, is not valid JSON ({exc.msg}). "
                "JSON lines need one complete JSON object per line."
            ) from exc
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}, is not a JSON object.")
        columns.update(dict.fromkeys(record))
        rows.append({k: "" if v is None else str(v) for k, v in record.items()})
    return list(columns), rows


def require_columns(table: Table, source: str, *wanted: str) -> None:
    missing = [name for name in wanted if name not in table.columns]
    if missing:
        found = ", ".join(repr(c) for c in table.columns) or "none"
        raise DataError(
            f"{source}: column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} not found. "
            f"Columns found: {found}. Pass the right names with --text-col and --label-col."
        )


def labeled_from_table(table: Table, source: str, text_col: str, label_col: str):
    """Clean a table into labelled texts: drop empty texts, missing labels and duplicates."""
    require_columns(table, source, text_col, label_col)
    texts, labels, numbers = [], [], []
    seen: dict[str, str] = {}
    empty = unlabeled = duplicates = conflicts = 0
    for number, row in enumerate(table.rows, start=1):
        text, label = clean_text(row.get(text_col)), (row.get(label_col) or "").strip()
        if not text:
            empty += 1
        elif not label:
            unlabeled += 1
        elif text in seen:
            # A repeated text would leak between splits; keep its first row only.
            duplicates += 1
            conflicts += seen[text] != label
        else:
            seen[text] = label
            texts.append(text)
            labels.append(label)
            numbers.append(number)
    report = LoadReport(
        source, table.sha256, table.encoding, len(table.rows), len(texts),
        empty, unlabeled, duplicates, conflicts,
    )
    return LabeledTexts(tuple(texts), tuple(labels), tuple(numbers)), report


def load_labeled(
    path: str | Path, text_col: str, label_col: str, encoding: str | None = None
) -> tuple[LabeledTexts, LoadReport]:
    """Read a user's CSV/TSV/JSONL file of labelled texts."""
    return labeled_from_table(read_table(path, encoding), str(path), text_col, label_col)


def load_texts(
    path: str | Path, text_col: str | None = None, encoding: str | None = None
) -> list[str]:
    """Read the texts to classify from a table; a one-column table needs no column name."""
    table = read_table(path, encoding)
    if text_col is None:
        text_col = _guess_text_column(table, str(path))
    require_columns(table, str(path), text_col)
    return [clean_text(row.get(text_col)) for row in table.rows]


GUESS_ROWS = 200  # rows measured to guess the text column: enough to see the pattern
TEXT_NAME_HINTS = ("text", "review", "narrative", "note", "notes", "body", "content",
                   "description", "comment", "case")


def guess_text_column(columns: list[str], rows: list[dict]) -> str | None:
    """The column whose values read most like prose: the most words per row on average, then
    the longest values, then a telling name. Columns that are mostly numbers or codes (ids,
    dates, scores) are never chosen, since a file's first column is often its id; None when
    every column is such a column (or there are none)."""
    if len(columns) == 1:
        return columns[0]
    sample = rows[:GUESS_ROWS]
    scored = [(_prose_score(column, sample), column) for column in columns]
    candidates = [(score, column) for score, column in scored if score is not None]
    return max(candidates, key=lambda pair: pair[0])[1] if candidates else None


def _prose_score(column: str, rows: list[dict]) -> tuple[float, float, bool] | None:
    values = [str(row.get(column) or "").strip() for row in rows]
    filled = [v for v in values if v]
    if not filled or sum(_looks_like_code(v) for v in filled) * 2 >= len(filled):
        return None
    # Averaged over every row, so a column that is mostly empty does not win on a few notes.
    words = sum(len(v.split()) for v in values) / len(values)
    length = sum(len(v) for v in values) / len(values)
    return words, length, column.strip().lower() in TEXT_NAME_HINTS


def _looks_like_code(value: str) -> bool:
    """A number, or one token with a digit in it (4471, P-0019, 2024-03-01, 3.5)."""
    return len(value.split()) == 1 and any(ch.isdigit() for ch in value)


def _guess_text_column(table: Table, source: str) -> str:
    if len(table.columns) == 1:
        return table.columns[0]
    for name in ("text", "review", "case", "body", "content"):
        if name in table.columns:
            return name
    raise DataError(
        f"{source}: which column holds the text? Columns found: "
        f"{', '.join(repr(c) for c in table.columns)}. Pass it with --text-col."
    )


def demo_tables() -> tuple[Table, Table]:
    """The shipped train and test files of the drug-review demo, read from the zip in place."""
    archive = demo_data_zip()
    with zipfile.ZipFile(archive) as zf:
        return tuple(  # type: ignore[return-value]
            _table_from_bytes(zf.read(name), f"{DEMO_DATA.distribution}:{name}")
            for name in ("drugsComTrain.tsv", "drugsComTest.tsv")
        )


def _table_from_bytes(data: bytes, source: str) -> Table:
    text, used = decode_bytes(data, source)
    columns, rows = _parse_delimited(text, Path(source), "\t")
    return Table(tuple(columns), tuple(rows), used, hashlib.sha256(data).hexdigest())


def load_demo() -> tuple[tuple[LabeledTexts, LoadReport], tuple[LabeledTexts, LoadReport]]:
    """The demo's (train, test) labelled texts: label = rating, text = review."""
    train, test = demo_tables()
    return (
        labeled_from_table(train, "drugsComTrain.tsv", DEMO_TEXT_COLUMN, DEMO_LABEL_COLUMN),
        labeled_from_table(test, "drugsComTest.tsv", DEMO_TEXT_COLUMN, DEMO_LABEL_COLUMN),
    )
