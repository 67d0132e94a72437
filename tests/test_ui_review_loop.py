"""The review loop in the real window, as a reviewer goes through it (issue 15): the queue
moves past deferred cases, blind review hides the model until a judgement (recorded as a
judgement, not a signature), signing asks and stays in view, the LLM pane does not oversell,
labels say what they mean, and the paper cuts a first-use walkthrough found.

The real window on the small model, a real SQLite history, a real loopback LLM server and
real accounts (``tests.helpers.window``); each test failed before its fix.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.pipeline import decide
from app.ui.sign_dialog import SignDialog
from tests.helpers.accounts import PASSWORD
from tests.helpers.ui_accounts import sign, sign_dialog, visible
from tests.helpers.window import NEGATIVE_CASE, WAIT, settled, type_and_analyze

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def waiting_cases(window, texts: list[str]) -> list[int]:
    """Cases scored elsewhere (a batch, the CLI) waiting in the queue."""
    store, bench = window.context.store, window.context.workbench
    decided = decide(bench, texts)
    return [store.add_case(text, "batch", prediction=p, escalation=d).case_id
            for text, (p, d) in zip(texts, decided, strict=True)]


def shown_case(window) -> int | None:
    state = window.case_view.state
    return None if state is None else state.case_id


def press(qtbot, window, key, modifiers=CTRL) -> None:
    qtbot.keyClick(window, key, modifiers)


def test_deferring_never_traps_the_queue(qtbot, gui):
    window = gui(review_queue=True)
    view = window.case_view
    first, second = waiting_cases(window, ["rash and pain every day", "great relief, happy"])

    press(qtbot, window, Qt.Key.Key_N, CTRL | SHIFT)  # next unreviewed case
    qtbot.waitUntil(lambda: shown_case(window) == first, timeout=WAIT)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    press(qtbot, window, Qt.Key.Key_3)  # defer
    sign(qtbot, window, login="ann")
    # Before: the queue answered with the deferred case again, forever.
    qtbot.waitUntil(lambda: shown_case(window) == second, timeout=WAIT)
    assert "1 by you this session, skipped" in view.queue_status

    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    press(qtbot, window, Qt.Key.Key_3)
    sign(qtbot, window)
    qtbot.waitUntil(lambda: window.message_bar.action_button.text() == "Revisit deferred",
                    timeout=WAIT)
    assert "the 2 you deferred this session" in window.message_bar.text.text()
    assert shown_case(window) == second  # nothing else to open

    press(qtbot, window, Qt.Key.Key_D, CTRL | SHIFT)  # revisit deferred cases
    qtbot.waitUntil(lambda: shown_case(window) == first, timeout=WAIT)
    press(qtbot, window, Qt.Key.Key_D, CTRL | SHIFT)
    qtbot.waitUntil(lambda: shown_case(window) == second, timeout=WAIT)


def test_blind_review_shows_nothing_and_records_a_judgement_not_a_signature(qtbot, gui):
    window = gui(blind_review=True)
    view, review = window.case_view, window.case_view.review
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)

    # No label is offered: before, the box came pre-filled with the model's "negative".
    assert review.blind_label.currentIndex() == -1 and review.blind_label.currentText() == ""
    press(qtbot, window, Qt.Key.Key_1)  # Ctrl+1 with nothing chosen: says what is missing
    assert "Choose your label" in review.error.text()
    assert view.state.blind

    review.blind_label.setFocus()
    qtbot.keyClick(review.blind_label, Qt.Key.Key_Down)  # keyboard: the first label
    chosen = review.blind_label.currentText()
    assert chosen
    press(qtbot, window, Qt.Key.Key_1)  # records the judgement
    qtbot.waitUntil(lambda: not view.state.blind, timeout=WAIT)
    # Before: "Record my judgement" filed a signed review at once.
    assert visible(window, SignDialog) is None
    record = window.context.store.get_case(view.state.case_id)
    assert not record.reviews and [j.label for j in record.judgements] == [chosen]
    assert view.result.body.isVisible()  # now both are on screen
    assert f"Your blind judgement: {chosen}" in review.judgement.text()

    press(qtbot, window, Qt.Key.Key_1)  # and now the reviewer signs, having seen both
    dialog = sign_dialog(qtbot, window)
    assert "accept the model's label" in dialog.summary.text()


def test_signing_asks_first_and_the_signature_stays_in_view(qtbot, gui):
    window = gui(review_queue=True, signature_meaning="reviewed")
    view, review, store = window.case_view, window.case_view.review, window.context.store
    (waiting,) = waiting_cases(window, ["great relief, the medicine works"])
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    signed_id = view.state.case_id

    review.meaning.setCurrentText("approved")
    press(qtbot, window, Qt.Key.Key_1)
    dialog = sign_dialog(qtbot, window)  # one keystroke opens the question, never signs
    assert "Meaning of the signature: approved" in dialog.summary.text()
    assert store.get_case(signed_id).reviews == ()
    sign(qtbot, window, login="ann")

    qtbot.waitUntil(lambda: shown_case(window) == waiting, timeout=WAIT)
    # The meaning chosen for the last case does not carry over to the next.
    assert review.meaning.currentText() == "reviewed"
    # The signature's manifestation stays on screen after the queue moved on.
    assert review.last_signed.isVisible()
    text = review.last_signed.text()
    assert text.startswith(f"Last signed: case {signed_id} — Accepted → negative.")
    assert "meaning “approved”" in text and "Signed by" in text


def test_the_llm_pane_leads_with_an_unusable_answer_and_asks_before_asking_again(
        qtbot, gui, llm_server):
    # An invented word and a piece of markup, with a label that agrees with the model.
    llm_server.script = ['{"explanation": "The patient had a medication used during ',
                         'pregnancy.", "label": "negative", "words": ["pregnancy", ',
                         '"</positive"]}']
    window = gui()
    view, pane, store = window.case_view, window.llm_pane, window.context.store
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window) and view.state.opinion is not None, timeout=WAIT)

    # Before: a green "The AI agrees with the model" led every answer.
    assert pane.verdict.text().startswith("No usable opinion:")
    assert "agrees" not in pane.verdict.text()
    assert "pregnancy" in pane.verdict.text()
    assert "</positive" not in view.state.opinion.cited_words

    press(qtbot, window, Qt.Key.Key_L)  # ask again: said what it does, nothing sent yet
    assert pane.again_box.isVisible()
    assert "same answer" in pane.again_box.findChild(type(pane.verdict)).text()
    assert len(store.get_case(view.state.case_id).opinions) == 1
    qtbot.mouseClick(pane.findChild(type(pane.ask_button), "llmAskAgainButton"),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(store.get_case(view.state.case_id).opinions) == 2,
                    timeout=WAIT)

    # The reviewer chooses whether the pane opens (and asks) by itself.
    pane.auto_open.setChecked(False)
    assert window.context.settings.open_llm_on_escalation is False
    window.llm_dock.hide()
    type_and_analyze(qtbot, window, NEGATIVE_CASE + " again")
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert view.state.escalated and view.state.opinion is None
    assert not window.llm_dock.isVisible()


def test_labels_say_what_they_mean(qtbot, gui):
    window = gui()
    view = window.case_view
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    meanings = view.result.meanings.text()
    assert "<b>negative</b>: the patient reports the drug did not work" in meanings
    assert "<b>neutral</b>: mixed or unclear" in meanings
    view.review.label_combo.setCurrentText("positive")
    assert "the drug worked well" in view.review.label_help.text()


def test_paper_cuts(qtbot, gui, tmp_path):
    window = gui()
    new_icon = window.act_new.icon().pixmap(24).toImage()
    assert new_icon != window.act_open.icon().pixmap(24).toImage()

    # Ctrl+N on the History tab: the Case tab comes forward and typing goes into its editor.
    window.tabs.setCurrentWidget(window.history)
    press(qtbot, window, Qt.Key.Key_N)
    assert window.tabs.currentWidget() is window.case_view
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.case_view.editor,
                    timeout=WAIT)

    # The reason takes more than one line.
    reason = window.case_view.review.reason
    reason.setPlainText("first line\nsecond line")
    assert window.case_view.review.reason_text() == "first line\nsecond line"

    # After an export, the PDF can be opened from the message.
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    task = window.export_case(window.case_view.state.case_id, tmp_path / "case.pdf")
    qtbot.waitUntil(lambda: task.done, timeout=WAIT)
    qtbot.waitUntil(lambda: window.message_bar.action_button.text() == "Open PDF",
                    timeout=WAIT)
    assert window.message_bar.action_button.isVisible()


def test_a_message_never_moves_what_is_under_the_pointer(qtbot, gui):
    window = gui()
    before = window.tabs.geometry()
    window.show_message("error", "Something went wrong, and this is a long explanation "
                                 "of what to do about it, long enough to wrap. " * 3)
    assert window.message_bar.isVisible()
    assert window.tabs.geometry() == before
    bar = window.message_bar.geometry()
    assert bar.bottom() <= window.centralWidget().height()
    window.message_bar.dismiss()
    assert window.tabs.geometry() == before


def test_keyboard_alone_walks_the_review_loop(qtbot, gui):
    """Type, analyse, override with a reason, sign, move to the next case: no mouse."""
    window = gui(review_queue=True)
    view, review = window.case_view, window.case_view.review
    (waiting,) = waiting_cases(window, ["great relief, the medicine works"])
    press(qtbot, window, Qt.Key.Key_N)  # new case: the editor has focus
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view.editor, timeout=WAIT)
    qtbot.keyClicks(view.editor, NEGATIVE_CASE)
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)

    review.label_combo.setFocus()  # Tab order reaches it; the walk starts at the label
    qtbot.keyClick(review.label_combo, Qt.Key.Key_Down)
    qtbot.keyClick(review.label_combo, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is review.reason
    qtbot.keyClicks(review.reason, "the rash was from the sun")
    press(qtbot, window, Qt.Key.Key_2)  # override
    dialog = sign_dialog(qtbot, window)
    qtbot.keyClicks(dialog.login, "ann")
    qtbot.keyClick(dialog.login, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.password, PASSWORD)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: shown_case(window) == waiting, timeout=WAIT)
    signed = window.context.store.latest_review(int(review.last_signed.text().split()[3]))
    assert signed.decision == "override" and signed.reason == "the rash was from the sun"


def test_the_window_fits_1024_by_700_with_the_pane_open_and_nothing_is_cut_off(qtbot, gui):
    window = gui()
    view = window.case_view
    window.llm_dock.show()
    window.resize(1024, 700)
    # Before: the window could not be narrower than 1377 px with the pane open.
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (1024, 700), timeout=WAIT)
    assert window.minimumSizeHint().width() <= 1024
    window.llm_dock.hide()
    window.llm_dock.show()  # and it does not grow back when the pane opens again
    qtbot.wait(50)
    assert window.width() == 1024

    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    qtbot.wait(50)
    chart, evidence = view.attribution.chart, view.attribution.evidence
    assert chart.items
    whole = chart.mapTo(evidence.viewport(), chart.rect().bottomLeft()).y() <= \
        evidence.viewport().height()
    assert whole or evidence.verticalScrollBar().maximum() > 0  # or it scrolls to the rest

    window.tabs.setCurrentWidget(window.history)  # the history fits beside the pane too
    qtbot.wait(50)
    assert window.history.width() >= window.history.minimumSizeHint().width()


def test_a_cases_kept_columns_are_shown_with_its_source(qtbot, gui):
    window = gui()
    store, bench = window.context.store, window.context.workbench
    ((prediction, decision),) = decide(bench, ["the rash spread to my arms"])
    case_id = store.add_case("the rash spread to my arms", "clinic.csv:19 (id 4471)",
                             {"id": "4471", "ward": "B2"}, prediction=prediction,
                             escalation=decision).case_id
    window.open_case(case_id)
    qtbot.waitUntil(lambda: shown_case(window) == case_id, timeout=WAIT)
    source = window.case_view.source_label
    assert source.text() == f"case {case_id} · from clinic.csv:19 (id 4471) · id 4471 · ward B2"
    assert "ward: B2" in source.toolTip()
