import json

import pytest

from models.data import clean_text, load_demo, load_labeled, load_texts, read_table
from models.errors import DataError
from tests.helpers.data import write_csv


def test_clean_text_decodes_entities_and_strips_wrapping_quotes():
    cleaned = clean_text('"""I couldn&rsquo;t sleep &amp; felt sick"""')
    assert cleaned == "I couldn’t sleep & felt sick"
    assert clean_text("  'single'  ") == "single"
    assert clean_text('He said "no" twice') == 'He said "no" twice'
    assert clean_text(None) == ""


def test_reads_csv_tsv_and_jsonl_alike(tmp_path):
    rows = [{"text": "good, really", "label": "a"}, {"text": "bad\tthing", "label": "b"}]
    csv_path = write_csv(tmp_path / "x.csv", rows)
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    tsv_rows = [{"text": "good, really", "label": "a"}, {"text": "bad thing", "label": "b"}]
    tsv = write_csv(tmp_path / "x.tsv", tsv_rows, delimiter="\t")
    for path in (csv_path, jsonl, tsv):
        data, report = load_labeled(path, "text", "label")
        assert data.labels == ("a", "b") and data.texts[0] == "good, really"
        assert report.rows_kept == 2


def test_missing_column_names_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"review": "t", "rating": "a"}])
    with pytest.raises(DataError) as info:
        load_labeled(path, "text", "rating")
    assert "'text' not found" in str(info.value)
    assert "'review', 'rating'" in str(info.value)
    assert "--text-col" in str(info.value)


def test_empty_texts_missing_labels_and_duplicates_are_dropped_and_counted(tmp_path):
    rows = [
        {"text": "one", "label": "a"}, {"text": "   ", "label": "a"},
        {"text": "two", "label": ""}, {"text": "one", "label": "b"},
        {"text": "three", "label": "b"},
    ]
    data, report = load_labeled(write_csv(tmp_path / "x.csv", rows), "text", "label")
    assert data.texts == ("one", "three")
    assert data.row_numbers == (1, 5)
    assert (report.dropped_empty_text, report.dropped_missing_label) == (1, 1)
    assert (report.dropped_duplicates, report.conflicting_duplicates) == (1, 1)


def test_non_utf8_file_is_detected_and_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nLa pâtisserie était délicieuse à Noël,pos\n".encode("cp1252"))
    with pytest.raises(DataError) as info:
        read_table(path)
    assert "not UTF-8" in str(info.value) and "--encoding" in str(info.value)
    data, _ = load_labeled(path, "text", "label", encoding="cp1252")
    assert data.texts == ("La pâtisserie était délicieuse à Noël",)


def test_binary_and_spreadsheet_files_are_refused_with_advice(tmp_path):
    binary = tmp_path / "data.csv"
    binary.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(DataError, match="binary file"):
        read_table(binary)
    sheet = tmp_path / "data.xlsx"
    sheet.write_bytes(b"whatever")
    with pytest.raises(DataError, match="Export it as CSV"):
        read_table(sheet)


def test_a_file_that_is_not_a_table(tmp_path):
    prose = tmp_path / "notes.txt"
    prose.write_text("Dear team\n\nPlease find attached my notes about the weekly meeting.\n")
    with pytest.raises(DataError):
        load_labeled(prose, "text", "label")


def test_broken_json_lines_name_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", \n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        read_table(path)


def test_load_texts_guesses_a_single_or_obvious_column(tmp_path):
    one = write_csv(tmp_path / "one.csv", [{"note": "hello"}, {"note": "world"}])
    assert load_texts(one) == ["hello", "world"]
    two = write_csv(tmp_path / "two.csv", [{"id": "1", "body2": "x"}])
    with pytest.raises(DataError, match="--text-col"):
        load_texts(two)


def test_demo_data_loads_with_its_documented_shape():
    (train, train_report), (test, _) = load_demo()
    assert (len(train), len(test)) == (600, 379)
    assert set(train.labels) == {"negative", "neutral", "positive"}
    assert not any(t.startswith('"') or "&#039;" in t for t in train.texts)
    assert train_report.encoding == "utf-8"
