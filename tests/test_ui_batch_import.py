"""Batch import (issue 15, item 6): the text column is the one that reads like prose, the
file's other columns are kept with each case, and a cancel says what the history holds — with
the tiny model and a real SQLite history."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.batch import read_cases
from tests.helpers.data import SCORED_CASES, synthetic_rows, write_csv

TIMEOUT = 30000
SCORING = 180000


def clinic_rows(n: int, seed: int = 21) -> list[dict[str, str]]:
    """An export as clinics make them: the id first (twice), the narrative, an outcome."""
    return [{"id": str(4471 + i), "patient_id": f"P-{i:04d}",
             "narrative": f"{row['text']} visit {seed}-{i}", "outcome": row["label"]}
            for i, row in enumerate(synthetic_rows(n // 3 + 1, seed=seed)[:n])]


def clinic_csv(tmp_path: Path, n: int, seed: int = 21) -> Path:
    return write_csv(tmp_path / "clinic.csv", clinic_rows(n, seed))


def open_dialog(qtbot, context, path: Path):
    from app.ui.batch_import import BatchImportDialog

    dialog = BatchImportDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_source(path)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=TIMEOUT)
    return dialog


# -- the text column, without Qt ---------------------------------------------------------------

def test_the_text_column_is_the_prose_not_the_ids_before_it():
    from models.data import guess_text_column

    rows = clinic_rows(12)
    assert guess_text_column(["id", "patient_id", "narrative", "outcome"], rows) == "narrative"
    # no name hint helps "narrative" here: a column named "text" of one-word codes loses
    coded = [{"id": r["id"], "text": r["outcome"], "story": r["narrative"]} for r in rows]
    assert guess_text_column(["id", "text", "story"], coded) == "story"
    numbers = [{"id": "1", "score": "3.5"}, {"id": "2", "score": "4"}]
    assert guess_text_column(["id", "score"], numbers) is None
    assert guess_text_column(["only"], [{"only": "17"}]) == "only"


def test_a_table_without_a_text_column_named_reads_the_prose(tmp_path):
    cases = read_cases(clinic_csv(tmp_path, 4))
    assert cases[0].text == clinic_rows(4)[0]["narrative"]


# -- the file's other columns, kept ------------------------------------------------------------

def test_other_columns_become_metadata_and_the_id_joins_the_source(tmp_path):
    [first, *_] = read_cases(clinic_csv(tmp_path, 3), "narrative")
    assert first.source == "clinic.csv:1 (id 4471)"
    assert first.metadata == {"id": "4471", "patient_id": "P-0000",
                              "outcome": clinic_rows(3)[0]["outcome"]}
    [chosen, *_] = read_cases(tmp_path / "clinic.csv", "narrative", keep=["outcome"])
    assert chosen.source == "clinic.csv:1" and list(chosen.metadata) == ["outcome"]


# -- the dialog ------------------------------------------------------------------------------

def test_the_dialog_picks_the_prose_column_and_shows_its_text(qtbot, ui_context, tmp_path):
    dialog = open_dialog(qtbot, ui_context, clinic_csv(tmp_path, 6))
    assert dialog.text_column.currentText() == "narrative"
    first = clinic_rows(6)[0]["narrative"]
    assert "narrative" in dialog.text_label.text()
    assert first in dialog.text_preview.toPlainText()
    assert dialog.preview.horizontalHeaderItem(2).font().bold()
    assert not dialog.preview.horizontalHeaderItem(0).font().bold()
    assert dialog.kept_columns() == ["id", "patient_id", "outcome"]
    dialog.text_column.setCurrentText("outcome")  # the user knows better: follow them
    assert dialog.kept_columns() == ["id", "patient_id", "narrative"]
    assert clinic_rows(6)[0]["outcome"] in dialog.text_preview.toPlainText()


def test_kept_columns_are_stored_with_each_case(qtbot, ui_context, tmp_path):
    dialog = open_dialog(qtbot, ui_context, clinic_csv(tmp_path, 4))
    dialog.explain.setChecked(False)
    outcome = dialog.metadata_columns.findItems("outcome", Qt.MatchFlag.MatchExactly)[0]
    outcome.setCheckState(Qt.CheckState.Unchecked)  # the answer is not for the reviewer
    dialog.start()
    qtbot.waitUntil(lambda: "Done:" in dialog.summary.text(), timeout=SCORING)
    store = ui_context.store
    newest = store.find_cases(page_size=1, sort="-id").items[0]
    case = store.get_case(newest.id)
    assert case.source == "clinic.csv:4 (id 4474)"
    assert case.metadata == {"id": "4474", "patient_id": "P-0003"}
    # the choices stay for the next file or a re-run: the finished run does not re-read the
    # file (the path field losing focus when disabled used to reset them to the first column)
    assert dialog.kept_columns() == ["id", "patient_id"]


def test_a_finished_run_keeps_the_chosen_text_column(qtbot, ui_context, tmp_path):
    dialog = open_dialog(qtbot, ui_context, clinic_csv(tmp_path, 3))
    dialog.path.setFocus()
    dialog.explain.setChecked(False)
    dialog.text_column.setCurrentText("patient_id")  # odd, but the user's to make
    dialog.start()
    qtbot.waitUntil(lambda: "Done:" in dialog.summary.text(), timeout=SCORING)
    qtbot.wait(200)  # a re-read of the file would land by now
    assert dialog.text_column.currentText() == "patient_id"


def test_a_cancel_says_what_the_history_holds_and_a_resume_finishes_it(qtbot, ui_context,
                                                                       tmp_path):
    """Cancelled while explaining the first chunk: its cases are stored with their decisions
    and no attributions yet. The message counts them from the history, the bar stays where it
    stopped, and importing again finishes those cases and scores the rest."""
    n = 40
    path = clinic_csv(tmp_path, n)
    texts = [case.text for case in read_cases(path, "narrative")]
    dialog = open_dialog(qtbot, ui_context, path)
    dialog.text_column.setCurrentText("narrative")  # named, so only the cancel is tested
    task = dialog.start()
    task.on_progress(lambda p: p.done >= 3 and dialog.cancel())
    qtbot.waitUntil(lambda: not dialog.running, timeout=SCORING)
    store = ui_context.store
    held = store.case_progress(texts)
    assert 0 < len(held) < n
    assert f"{len(held):,} of the file's {n} cases" in dialog.summary.text()
    unfinished = sum(not p.explained for p in held.values())
    assert unfinished and f"{unfinished:,} of them still without" in dialog.summary.text()
    assert 0 < dialog.progress.value() < dialog.progress.maximum()

    dialog.start()
    qtbot.waitUntil(lambda: "Done:" in dialog.summary.text(), timeout=SCORING)
    held = store.case_progress(texts)
    assert len(held) == n and all(p.explained for p in held.values())
    assert store.find_cases().total == SCORED_CASES + n
    assert dialog.progress.value() == dialog.progress.maximum()


@pytest.mark.parametrize("rows", [[{"id": "1", "n": "2"}, {"id": "3", "n": "4"}]])
def test_a_table_of_numbers_has_no_text_to_guess(tmp_path, rows):
    from models.errors import DataError

    with pytest.raises(DataError, match="which column holds the text"):
        read_cases(write_csv(tmp_path / "numbers.csv", rows))
