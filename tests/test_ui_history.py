"""The case history view on a real SQLite history of 300 cases scored by the tiny model."""

from __future__ import annotations

import importlib
import importlib.util
import sqlite3

import pytest
from PySide6.QtCore import Qt

from app.ui.history_view import COLUMNS, PAGE_SIZE, PLACEHOLDER, HistoryView
from tests.helpers.accounts import signer
from tests.helpers.data import SCORED_CASES
from tests.helpers.history_view import TIMEOUT, run_db, shown_ids, wait_rows_loaded


def export_missing() -> bool:
    if importlib.util.find_spec("app.reports.export") is None:
        return True
    from app.reports import export

    cards = importlib.util.find_spec("app.reports.model_card")
    loader = hasattr(export, "model_card_loader") or (
        cards is not None and hasattr(importlib.import_module(cards.name), "model_card_loader"))
    return not (hasattr(export, "export_cases") and loader)


needs_export = pytest.mark.skipif(
    export_missing(), reason="app/reports/export.py (export_cases and model_card_loader) is "
                             "not complete in the tree yet; the lead unskips this when it lands")
PREVIEW = next(i for i, c in enumerate(COLUMNS) if c.key == "preview")


@pytest.fixture()
def view(qtbot, ui_context):
    widget = HistoryView(ui_context)
    qtbot.addWidget(widget)
    widget.resize(1100, 600)
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()  # focus and shortcuts need the active window
    qtbot.waitUntil(lambda: widget.model.settled and not widget.model.loading, timeout=TIMEOUT)
    return widget


def test_the_table_knows_every_case_but_fetches_only_the_pages_shown(qtbot, view):
    model = view.model
    assert view.table.objectName() == "historyTable" and view.table.model() is model
    assert view.findChild(type(view.search), "historySearch") is view.search
    assert model.rowCount() == SCORED_CASES
    assert model.cached_pages() <= 2  # the first screen, not the whole history
    newest = run_db(view.context, qtbot,
                    lambda s: s.find_cases(page_size=1, sort="-created").items[0])
    assert model.case_id_at(0) == newest.id
    assert model.index(0, 0).data() == str(newest.id)
    last = SCORED_CASES - 1
    first_look = model.index(last, PREVIEW).data()  # not fetched yet: a placeholder, no wait
    assert first_look == PLACEHOLDER
    qtbot.waitUntil(lambda: model.index(last, PREVIEW).data() != PLACEHOLDER, timeout=TIMEOUT)
    assert "case" in model.index(last, PREVIEW).data()


def test_scrolling_to_the_end_fetches_the_last_page(qtbot, view):
    view.table.scrollToBottom()
    wait_rows_loaded(qtbot, view, [SCORED_CASES - 1])
    oldest = run_db(view.context, qtbot,
                    lambda s: s.find_cases(page_size=1, sort="created").items[0])
    assert view.model.case_id_at(SCORED_CASES - 1) == oldest.id
    assert view.model.cached_pages() <= SCORED_CASES // PAGE_SIZE


def test_search_is_debounced_and_matches_the_text(qtbot, view):
    fetched = []
    view.model.page_fetched.connect(lambda page, _s: fetched.append(page))
    qtbot.keyClicks(view.search, "relief")  # one query after the typing, not one per key
    qtbot.waitUntil(lambda: view.model.query.search == "relief" and view.model.settled
                    and not view.model.loading, timeout=TIMEOUT)
    expected = run_db(view.context, qtbot, lambda s: s.find_cases(search="relief").total)
    assert 0 < view.model.rowCount() == expected < SCORED_CASES
    assert len(fetched) <= 2
    wait_rows_loaded(qtbot, view, range(view.model.rowCount()))
    previews = [view.model.index(r, PREVIEW).data() for r in range(view.model.rowCount())]
    assert all("relief" in text for text in previews)
    assert view.count_label.text().startswith(f"{expected} case")


@pytest.mark.parametrize(("widget", "index", "kwargs"), [
    ("decision_filter", 2, {"escalated": True}),
    ("reviewed_filter", 1, {"reviewed": True}),
    ("reviewed_filter", 2, {"reviewed": False}),
])
def test_filters_match_the_store(qtbot, view, widget, index, kwargs):
    getattr(view, widget).setCurrentIndex(index)
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    expected = run_db(view.context, qtbot, lambda s: s.find_cases(**kwargs).total)
    assert view.model.rowCount() == expected


def test_label_reviewer_model_and_date_filters(qtbot, view):
    qtbot.waitUntil(lambda: view.label_filter.count() > 1 and view.model_filter.count() > 1,
                    timeout=TIMEOUT)
    label = view.label_filter.itemData(1)
    view.label_filter.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.model.query.label == label and view.model.settled,
                    timeout=TIMEOUT)
    assert view.model.rowCount() == run_db(view.context, qtbot,
                                           lambda s: s.find_cases(label=label).total)
    view.clear_filters()
    view.reviewer_filter.setText("ann")  # the login id of the signer
    view.apply_filters()
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    assert view.model.rowCount() == 20  # Ann signed every other one of the 40 reviews
    view.clear_filters()
    view.model_filter.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    assert view.model.rowCount() == SCORED_CASES  # one model scored them all
    view.clear_filters()
    view.from_date.setDate(view.from_date.date().currentDate().addDays(1))
    view.from_check.setChecked(True)
    qtbot.waitUntil(lambda: view.model.settled and view.model.rowCount() == 0, timeout=TIMEOUT)
    assert view.empty_note.isVisible()
    view.clear_filters()
    qtbot.waitUntil(lambda: view.model.rowCount() == SCORED_CASES, timeout=TIMEOUT)


def test_sorting_by_a_column_asks_the_store(qtbot, view):
    confidence = next(i for i, c in enumerate(COLUMNS) if c.key == "confidence")
    view.table.sortByColumn(confidence, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(lambda: view.model.query.sort == "confidence" and view.model.settled,
                    timeout=TIMEOUT)
    wait_rows_loaded(qtbot, view, range(20))
    values = [float(view.model.index(r, confidence).data()) for r in range(20)]
    assert values == sorted(values)
    reviewer = next(i for i, c in enumerate(COLUMNS) if c.key == "reviewer")
    view.table.sortByColumn(reviewer, Qt.SortOrder.AscendingOrder)  # not sortable: refused
    assert view.model.query.sort == "confidence"
    assert view.table.horizontalHeader().sortIndicatorSection() == confidence


def test_new_cases_appear_when_the_history_changes(qtbot, view):
    before = shown_ids(view)[:5]
    added = run_db(view.context, qtbot, lambda s: s.add_case("a brand new case of rash"))
    view.context.cases_changed.emit(None)
    qtbot.waitUntil(lambda: view.model.rowCount() == SCORED_CASES + 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: view.model.case_id_at(0) == added.id, timeout=TIMEOUT)
    assert shown_ids(view)[1:6] == before


def test_a_write_updates_its_row_in_place_without_fetching(qtbot, view):
    """A review (or a new record) carries the case's new list row: the view puts it in place;
    it used to fetch every visible page again after each write."""
    case_id = view.model.case_id_at(2)
    write = run_db(view.context, qtbot, lambda s: s.review_case(
        case_id, signer(s, "cleo"), "override", "neutral", "the words say so"))
    fetched = []
    view.model.page_fetched.connect(lambda page, _s: fetched.append(page))
    view.context.cases_changed.emit(write.summary)
    reviewer = next(i for i, c in enumerate(COLUMNS) if c.key == "reviewer")
    assert view.model.data(view.model.index(2, reviewer)) == "cleo"  # the login id
    qtbot.wait(300)  # past the refresh throttle: nothing was asked of the store
    assert fetched == [] and view.model.case_id_at(2) == case_id


def test_a_write_in_a_filtered_list_refreshes_it(qtbot, view):
    """Under a filter the write can take the case out of the list: that needs a fetch."""
    view.reviewed_filter.setCurrentIndex(view.reviewed_filter.findData(False))
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    case_id = view.model.case_id_at(0)
    write = run_db(view.context, qtbot,
                   lambda s: s.review_case(case_id, signer(s, "cleo"), "accept"))
    view.context.cases_changed.emit(write.summary)
    qtbot.waitUntil(lambda: view.model.case_id_at(0) != case_id, timeout=TIMEOUT)


def test_enter_and_double_click_open_the_case(qtbot, view):
    view.table.setFocus()
    view.table.selectRow(3)
    case_id = view.model.case_id_at(3)
    with qtbot.waitSignal(view.open_case, timeout=TIMEOUT) as opened:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert opened.args == [case_id]
    index = view.model.index(5, 2)
    rect = view.table.visualRect(index)
    with qtbot.waitSignal(view.open_case, timeout=TIMEOUT) as opened:
        # Qt 6's test double-click lacks the press that the view needs first.
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                          pos=rect.center())
    assert opened.args == [view.model.case_id_at(5)]


def test_keyboard_reaches_search_filters_and_table(qtbot, view):
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert view.search.hasFocus()
    reached = []
    for _ in range(15):  # Tab walks search, filters, then the table
        qtbot.keyClick(view.focusWidget(), Qt.Key.Key_Tab)
        reached.append(view.focusWidget())
        if reached[-1] is view.table:
            break
    assert reached[-1] is view.table
    assert reached.index(view.label_filter) < reached.index(view.reviewer_filter)
    actions = view.table.actions()
    assert {a.text() for a in actions} >= {"Open trail", "Export case to PDF…",
                                           "Export filtered to PDF…", "Verify audit trail"}


def test_the_trail_shows_every_record_and_audit_event(qtbot, view):
    reviewed = run_db(view.context, qtbot, lambda s: s.find_cases(
        reviewed=True, decision="override", page_size=1).items[0])
    view.search.setText(reviewed.preview)  # every word of it must occur
    view.apply_filters()
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    wait_rows_loaded(qtbot, view, range(view.model.rowCount()))
    row = shown_ids(view).index(reviewed.id)
    view.table.selectRow(row)
    view.trail_action.trigger()
    qtbot.waitUntil(lambda: view.trail_dialog is not None, timeout=TIMEOUT)
    dialog = view.trail_dialog
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()
    assert f"Case #{reviewed.id}" in text
    assert "Reviews (signed) (1)" in text and "override" in text and "the words say so" in text
    assert "Predictions (1)" in text and "Escalation decisions (1)" in text
    for event in ("case_created", "predicted", "escalated", "reviewed"):
        assert event in text
    assert dialog.browser.isReadOnly()


def test_verify_reports_an_intact_trail_and_then_a_tampered_row(qtbot, view):
    with qtbot.waitSignal(view.context.message, timeout=TIMEOUT) as said:
        view.verify_trail()
    assert said.args[0] == "info" and "intact" in view.status.text()
    location = view.context.store.location
    with sqlite3.connect(location) as raw:
        for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger' "
                                   "AND tbl_name='audit_events'").fetchall():
            raw.execute(f'DROP TRIGGER "{name}"')
        victim = raw.execute("SELECT id FROM audit_events ORDER BY id LIMIT 1 OFFSET 7"
                             ).fetchone()[0]
        raw.execute("UPDATE audit_events SET actor='mallory' WHERE id=?", (victim,))
    with qtbot.waitSignal(view.context.message, timeout=TIMEOUT) as said:
        view.verify_trail()
    assert said.args[0] == "error"
    assert f"BROKEN at event {victim}" in view.status.text()


@needs_export
def test_export_one_case_and_the_filtered_set(qtbot, view, tmp_path):
    view.table.selectRow(0)
    case_id = view.selected_case_ids()[0]
    one = tmp_path / "one.pdf"
    view.export_cases_to([case_id], one)
    qtbot.waitUntil(lambda: "Exported 1 case" in view.status.text(), timeout=60000)
    assert one.read_bytes().startswith(b"%PDF")
    view.reviewed_filter.setCurrentIndex(1)  # reviewed: accept or override
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)
    many = tmp_path / "reviewed.pdf"
    view.export_filtered_to(many)
    qtbot.waitUntil(lambda: view.status.text().startswith("Exported"), timeout=120000)
    assert f"Exported {view.model.rowCount()} case" in view.status.text()
    assert many.read_bytes().startswith(b"%PDF")


@needs_export
def test_an_export_can_be_cancelled(qtbot, view, tmp_path):
    out = tmp_path / "all.pdf"
    task = view.export_filtered_to(out)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: "cancelled;" in view.status.text().lower(), timeout=120000)
    assert task.cancelled
    assert not out.exists()


def test_an_answer_for_a_closed_view_is_dropped(qtbot, ui_context):
    import shiboken6

    widget = HistoryView(ui_context)
    widget.model.refresh()  # a page is on its way from the database worker
    shiboken6.delete(widget)  # the window closed before it arrived
    qtbot.waitUntil(lambda: ui_context.runner.running == 0, timeout=TIMEOUT)
    qtbot.wait(50)  # the queued answer is delivered (and must be dropped) here
