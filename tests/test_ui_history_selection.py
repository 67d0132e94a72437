"""The history as a reviewer tries it (issue 15): the selection follows the case, not the row;
blind mode hides the model's answer; a verification goes stale; the text column is on screen."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt

from app.ui.history_view import COLUMNS, HistoryView
from tests.helpers.history_view import TIMEOUT, run_db, shown_ids, wait_rows_loaded

PREVIEW = next(i for i, c in enumerate(COLUMNS) if c.key == "preview")
LABEL = next(i for i, c in enumerate(COLUMNS) if c.key == "label")
CONFIDENCE = next(i for i, c in enumerate(COLUMNS) if c.key == "confidence")
DECISION = next(i for i, c in enumerate(COLUMNS) if c.key == "decision")


@pytest.fixture()
def view(qtbot, ui_context):
    widget = HistoryView(ui_context)
    qtbot.addWidget(widget)
    widget.resize(1240, 600)  # the history inside a 1280-pixel window
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    settle(qtbot, widget)
    return widget


def settle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: view.model.settled and not view.model.loading, timeout=TIMEOUT)


def highlighted_ids(view) -> list[int | None]:
    """The cases of the rows the table shows selected."""
    rows = sorted({index.row() for index in view.table.selectionModel().selectedRows()})
    return [view.model.case_id_at(row) for row in rows]


def current_row_id(view) -> int | None:
    index = view.table.currentIndex()
    return view.model.case_id_at(index.row()) if index.isValid() else None


def select_case(view, case_id: int) -> None:
    view.table.selectRow(shown_ids(view).index(case_id))


def assert_still_selected(view, case_id: int) -> None:
    assert view.selected_case_ids() == [case_id]
    assert view.current_case_id() == case_id
    assert highlighted_ids(view) == [case_id]
    assert current_row_id(view) == case_id


# -- 1. the selection follows the case ----------------------------------------------------------

def test_the_selection_stays_on_the_case_when_new_cases_arrive_on_top(qtbot, view):
    chosen = view.model.case_id_at(5)
    select_case(view, chosen)
    assert_still_selected(view, chosen)
    added = run_db(view.context, qtbot,
                   lambda s: [s.add_case(f"a new case of rash number {i}") for i in range(3)])
    view.context.cases_changed.emit(None)
    qtbot.waitUntil(lambda: view.model.case_id_at(0) == added[-1].id, timeout=TIMEOUT)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, range(12))
    assert shown_ids(view).index(chosen) == 8  # three rows lower
    assert_still_selected(view, chosen)


def test_the_selection_follows_the_case_through_a_sort(qtbot, view):
    chosen = view.model.case_id_at(5)
    select_case(view, chosen)
    view.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # by case id: oldest first
    qtbot.waitUntil(lambda: view.model.query.sort == "id", timeout=TIMEOUT)
    settle(qtbot, view)
    assert view.selected_case_ids() == [chosen]  # remembered, though not on screen yet
    assert None not in highlighted_ids(view) and highlighted_ids(view) in ([], [chosen])
    order = run_db(view.context, qtbot,
                   lambda s: [c.id for c in s.find_cases(sort="id", page_size=1000).items])
    row = order.index(chosen)
    view.table.scrollTo(view.model.index(row, 0))
    wait_rows_loaded(qtbot, view, [row])
    qtbot.waitUntil(lambda: highlighted_ids(view) == [chosen], timeout=TIMEOUT)
    assert_still_selected(view, chosen)


def test_a_filter_keeps_the_case_selected_or_clears_the_selection(qtbot, view):
    chosen = view.model.case_id_at(5)  # the newest cases have no review
    select_case(view, chosen)
    view.reviewed_filter.setCurrentIndex(view.reviewed_filter.findData(False))
    qtbot.waitUntil(lambda: view.model.query.reviewed is False, timeout=TIMEOUT)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, range(10))
    assert_still_selected(view, chosen)
    view.reviewed_filter.setCurrentIndex(view.reviewed_filter.findData(True))
    qtbot.waitUntil(lambda: view.model.query.reviewed is True, timeout=TIMEOUT)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, range(view.model.rowCount()))
    assert chosen not in shown_ids(view)
    assert view.selected_case_ids() == [] and view.current_case_id() is None
    assert highlighted_ids(view) == [] and current_row_id(view) is None
    assert not view.trail_action.isEnabled() and not view.export_case_action.isEnabled()


def test_the_actions_name_the_cases_they_act_on(qtbot, view):
    assert not view.trail_action.isEnabled() and not view.export_case_action.isEnabled()
    chosen = view.model.case_id_at(2)
    select_case(view, chosen)
    assert view.trail_action.text() == f"Open trail of case {chosen}"
    assert view.export_case_action.text() == f"Export case {chosen} to PDF…"
    assert view.trail_action.isEnabled() and view.export_case_action.isEnabled()
    view.table.selectionModel().select(
        view.model.index(4, 0), view.table.selectionModel().SelectionFlag.Select
        | view.table.selectionModel().SelectionFlag.Rows)
    view.table.selectionModel().select(
        view.model.index(6, 0), view.table.selectionModel().SelectionFlag.Select
        | view.table.selectionModel().SelectionFlag.Rows)
    assert view.export_case_action.text() == "Export 3 cases to PDF…"
    assert view.trail_action.text() == f"Open trail of case {chosen}"  # the current one
    view.table.clearSelection()
    assert view.selected_case_ids() == []
    assert not view.trail_action.isEnabled() and not view.export_case_action.isEnabled()


# -- 2. blind mode ------------------------------------------------------------------------------

def set_blind(context, on: bool) -> None:
    context.update_settings(replace(context.settings, blind_review=on))


def test_blind_mode_hides_the_model_answer_of_unreviewed_cases(qtbot, view, tmp_path):
    wait_rows_loaded(qtbot, view, range(5))
    shown_label = view.model.index(0, LABEL).data()
    set_blind(view.context, True)
    for column in (LABEL, CONFIDENCE, DECISION):
        assert view.model.index(0, column).data() == "hidden (blind)"
        assert view.model.index(0, column).data(Qt.ItemDataRole.DecorationRole) is None
        assert "hidden" in (view.model.index(0, column).data(Qt.ItemDataRole.ToolTipRole) or
                            "hidden")
    assert not view.label_filter.isEnabled()
    view.table.sortByColumn(CONFIDENCE, Qt.SortOrder.AscendingOrder)  # the order would tell
    assert view.model.query.sort != "confidence"
    assert "blind" in view.status.text().lower()
    unreviewed = view.model.case_id_at(0)
    select_case(view, unreviewed)
    view.trail_action.trigger()
    assert view.status.text() == (f"Blind review: record your judgement on case {unreviewed} "
                                  "first (open it with Enter).")
    qtbot.wait(200)
    assert view.trail_dialog is None
    assert view.export_cases_to([unreviewed], tmp_path / "x.pdf") is None
    assert f"case {unreviewed} first" in view.status.text()
    view.reviewed_filter.setCurrentIndex(view.reviewed_filter.findData(True))
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, [0])
    assert view.model.index(0, LABEL).data() not in ("hidden (blind)", "—")  # reviewed: shown
    view.reviewed_filter.setCurrentIndex(0)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, [0])
    set_blind(view.context, False)  # switched at run time: the rows show the answer again
    assert view.model.index(0, LABEL).data() == shown_label
    assert view.label_filter.isEnabled()


# -- 3. a verification goes stale ---------------------------------------------------------------

def test_a_change_to_the_history_marks_the_verification_stale(qtbot, view):
    with qtbot.waitSignal(view.context.message, timeout=TIMEOUT):
        view.verify_trail()
    assert "intact" in view.status.text() and view.status.property("verified") is True
    view.context.cases_changed.emit(None)
    assert "changed since the last verification" in view.status.text()
    assert "verify again" in view.status.text()
    assert view.status.property("verified") is None


# -- 4. the text column is on screen ------------------------------------------------------------

def test_the_text_column_is_on_screen_in_a_1280_pixel_window(qtbot, view):
    view.resize(1240, 600)
    qtbot.wait(50)
    table = view.table
    assert table.columnViewportPosition(PREVIEW) + 250 <= table.viewport().width()


def test_switching_blind_review_on_drops_an_order_or_filter_that_tells(qtbot, view, tmp_path):
    view.table.sortByColumn(CONFIDENCE, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: view.model.query.sort == "-confidence", timeout=TIMEOUT)
    view.decision_filter.setCurrentIndex(view.decision_filter.findData(True))
    qtbot.waitUntil(lambda: view.model.query.escalated is True, timeout=TIMEOUT)
    settle(qtbot, view)
    set_blind(view.context, True)
    assert view.model.query.sort is None and view.model.query.escalated is None
    assert not view.decision_filter.isEnabled() and view.decision_filter.currentIndex() == 0
    assert view.table.horizontalHeader().sortIndicatorSection() == COLUMNS.index(
        next(c for c in COLUMNS if c.key == "created"))
    assert "blind" in view.status.text().lower()
    settle(qtbot, view)
    assert view.export_filtered_to(tmp_path / "all.pdf") is None  # predictions of unreviewed
    assert "Reviewed" in view.status.text()


def test_blind_review_still_opens_the_trail_of_a_reviewed_case(qtbot, view):
    set_blind(view.context, True)
    view.reviewed_filter.setCurrentIndex(view.reviewed_filter.findData(True))
    qtbot.waitUntil(lambda: view.model.query.reviewed is True, timeout=TIMEOUT)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, [0])
    view.table.selectRow(0)
    view.trail_action.trigger()
    qtbot.waitUntil(lambda: view.trail_dialog is not None, timeout=TIMEOUT)
    qtbot.addWidget(view.trail_dialog)


def test_a_click_after_a_refresh_selects_only_the_clicked_case(qtbot, view):
    chosen = view.model.case_id_at(5)
    select_case(view, chosen)
    run_db(view.context, qtbot, lambda s: s.add_case("another new case of rash"))
    view.context.cases_changed.emit(None)
    qtbot.waitUntil(lambda: view.model.rowCount() > 300 and view.model.settled
                    and not view.model.loading, timeout=TIMEOUT)
    wait_rows_loaded(qtbot, view, range(10))
    other = view.model.case_id_at(2)
    # A real click, with no modifier: selectRow() reads the keyboard state the earlier GUI
    # tests' Ctrl shortcuts may leave behind on the offscreen platform.
    rect = view.table.visualRect(view.model.index(2, 1))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, rect.center())
    assert view.selected_case_ids() == [other] and highlighted_ids(view) == [other]


def test_ctrl_click_adds_to_a_selected_case_that_no_row_shows_yet(qtbot, view):
    chosen = view.model.case_id_at(5)
    select_case(view, chosen)
    view.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # the case is far down now
    qtbot.waitUntil(lambda: view.model.query.sort == "id", timeout=TIMEOUT)
    settle(qtbot, view)
    wait_rows_loaded(qtbot, view, [0])
    first = view.model.case_id_at(0)
    rect = view.table.visualRect(view.model.index(0, 1))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ControlModifier, rect.center())
    assert sorted(view.selected_case_ids()) == sorted([chosen, first])
    assert view.export_case_action.text() == "Export 2 cases to PDF…"
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert view.selected_case_ids() == [first]  # a plain click selects only what it hits
