"""The desktop window, driven like a reviewer would, on a small real model, a real SQLite case
history and a real loopback LLM server (pytest-qt, offscreen platform set by conftest).

type a case -> Analyze -> highlights and badge -> the escalated case opens the LLM pane, which
streams -> override with a reason -> the case is in the history with its audit events ->
export to PDF. Plus: blind review records both judgements, the review queue opens the next
case from its stored records, and the GUI thread keeps ticking while the work runs.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QTableView

from app.settings import Settings
from app.ui.app import make_window, start_background
from tests.helpers.cli import run_cli
from tests.helpers.llm_server import non_loopback_address, serving
from tests.helpers.ui_accounts import sign
from tests.helpers.window import (  # the gui and llm_server fixtures: tests/conftest.py
    LLM_ANSWER,
    NEGATIVE_CASE,
    OTHER_CASE,
    WAIT,
    settled,
    started_window,
    type_and_analyze,
)


def test_case_flow_end_to_end(qtbot, gui, tmp_path, llm_server):
    window = gui()
    view = window.case_view
    type_and_analyze(qtbot, window, NEGATIVE_CASE)

    # The answer, the badge with its reasons, and the highlights.
    label = window.findChild(QLabel, "labelView")
    qtbot.waitUntil(lambda: label.text().startswith("negative"), timeout=WAIT)
    badge = window.findChild(QLabel, "decisionBadge")
    assert badge.text() == "ESCALATE"
    # Longer than the 32-token window: read whole, and the answer says how.
    assert view.result.length_line.text().startswith("Read whole:")
    assert "window" not in view.result.reasons.text()
    assert window.findChild(type(view.result.bars), "probabilityView").rows
    qtbot.waitUntil(lambda: settled(window) and view.state.opinion is not None, timeout=WAIT)
    browser = view.attribution.browser
    assert "background-color" in browser.toHtml()
    offset = browser.toPlainText().index("rash")
    assert "P(negative)" in browser.tooltip_at_offset(offset)
    assert view.attribution.faith_badge.text().startswith("Faithfulness")

    # The class switch re-renders the highlights for another class without recomputing.
    view.attribution.class_combo.setCurrentText("positive")
    assert "P(positive)" in browser.tooltip_at_offset(offset)

    # The escalated case opened the LLM pane by itself; the answer streamed and was checked.
    pane = window.llm_pane
    assert window.llm_dock.isVisible() and pane.objectName() == "llmPane"
    assert pane.ai_badge.isVisible()
    assert "good relief" in pane.answer.toPlainText()
    assert "DISAGREES" in pane.verdict.text()
    assert llm_server.attempts["scripted"] == 1
    # Its rationale checked against the small model: the cited word taken out, scored again.
    assert "Without the words the AI cites (“medicine”)" in pane.findings.text()

    # Override with a reason (a missing reason is refused in place, nothing is signed).
    review = view.review
    review.label_combo.setCurrentText("neutral")
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert "reason" in review.error.text()
    review.reason.setPlainText("Mixed: relief at first, side effects later.")
    qtbot.mouseClick(window.findChild(type(review.accept_button), "reviewOverride"),
                     Qt.MouseButton.LeftButton)
    sign(qtbot, window, login="ann")  # the signed-in user signs, not the settings' name
    qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)
    case_id = view.state.case_id

    record = window.context.store.get_case(case_id)
    assert record.review.decision == "override" and record.review.label == "neutral"
    assert record.review.reviewer == "ann" and record.review.signature.verified
    assert record.review.signature.full_name == "Ann Archer"
    assert record.attribution is not None and record.opinion is not None
    kinds = [event.kind for event in record.events]
    for kind in ("predicted", "reviewed"):
        assert kind in kinds

    # The history lists the case.
    window.tabs.setCurrentIndex(1)
    table = window.findChild(QTableView, "historyTable")
    assert window.findChild(QLineEdit, "historySearch") is not None
    qtbot.waitUntil(lambda: table.model() is not None and table.model().rowCount() >= 1,
                    timeout=WAIT)

    # Export the case to PDF, off the GUI thread.
    out = tmp_path / "case.pdf"
    task = window.export_case(case_id, out)
    qtbot.waitUntil(lambda: task.done, timeout=WAIT)
    assert out.read_bytes().startswith(b"%PDF")
    kinds = [e.kind for e in window.context.store.get_case(case_id).events]
    assert "exported" in kinds


def test_blind_review_records_both_judgements(qtbot, gui):
    window = gui(blind_review=True)
    view = window.case_view
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    qtbot.waitUntil(lambda: view.state.opinion is not None, timeout=WAIT)

    # Nothing of the model's answer is shown yet.
    assert not view.result.body.isVisible()
    assert "hidden" in view.attribution.browser.toPlainText()
    assert "good relief" not in window.llm_pane.answer.toPlainText()
    assert view.review.blind_box.isVisible()

    view.review.blind_label.setCurrentText("neutral")
    view.review.blind_note.setText("sounds mixed to me")
    qtbot.mouseClick(view.review.blind_button, Qt.MouseButton.LeftButton)
    # A judgement, not a signature: no dialog, and both are on screen before anyone signs.
    qtbot.waitUntil(lambda: not view.state.blind, timeout=WAIT)
    assert "Your blind judgement: neutral" in view.review.judgement.text()
    assert view.result.body.isVisible()
    assert view.result.label_view.text().startswith("negative")
    offset = view.attribution.browser.toPlainText().index("rash")
    assert "P(negative)" in view.attribution.browser.tooltip_at_offset(offset)
    assert "good relief" in window.llm_pane.answer.toPlainText()

    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)  # accept
    sign(qtbot, window, login="ann")
    qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)
    record = window.context.store.get_case(view.state.case_id)
    (judgement,) = record.judgements
    assert (judgement.label, judgement.note) == ("neutral", "sounds mixed to me")
    (review,) = record.reviews
    assert review.decision == "accept" and review.signature.verified
    # The signature cites a chain head at or after the judgement's event: it covers it.
    assert review.signature.head_id >= judgement.event_id


def test_review_queue_opens_the_next_case_from_its_records(qtbot, gui):
    window = gui(review_queue=True)
    view, store = window.case_view, window.context.store
    bench = window.context.workbench
    from app.pipeline import decide

    # A case scored elsewhere (batch, CLI) waits in the queue, without attributions.
    ((prediction, decision),) = decide(bench, [OTHER_CASE])
    waiting_id = store.add_case(OTHER_CASE, "batch", prediction=prediction,
                                escalation=decision).case_id

    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window) and view.state.opinion is not None, timeout=WAIT)
    first_id = view.state.case_id
    view.review.defer()
    sign(qtbot, window, login="ann")
    qtbot.waitUntil(lambda: view.state is not None and view.state.case_id == waiting_id,
                    timeout=WAIT)
    assert view.editor.toPlainText() == OTHER_CASE
    assert view.state.prediction == store.get_case(waiting_id).prediction.value
    assert view.result.label_view.text().startswith(prediction.label)
    # What was missing is computed and stored; nothing stored is recomputed.
    qtbot.waitUntil(lambda: settled(window), timeout=WAIT)
    assert len(store.get_case(waiting_id).predictions) == 1
    assert store.get_case(waiting_id).attribution is not None
    assert store.get_case(first_id).review.decision == "defer"


def test_gui_thread_keeps_ticking_while_attributions_and_llm_run(qtbot, gui, llm_server):
    window = gui(llm_model="drip")  # 50 pieces, 50 ms apart
    ticks: list[float] = []
    timer = QTimer(interval=20, timeout=lambda: ticks.append(time.monotonic()))
    timer.start()
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: settled(window) and window.case_view.state.opinion is not None,
                    timeout=WAIT)
    timer.stop()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert llm_server.attempts["drip"] == 1
    assert "word49" in window.case_view.state.opinion.raw_text
    assert len(ticks) > 20
    assert max(gaps) < 0.4, f"the GUI thread stalled for {max(gaps):.2f} s"


def test_cancel_stops_the_llm_answer(qtbot, gui, llm_server):
    window = gui(llm_model="drip")
    view = window.case_view
    type_and_analyze(qtbot, window, NEGATIVE_CASE)
    qtbot.waitUntil(lambda: "word1" in window.llm_pane.answer.toPlainText(), timeout=WAIT)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.busy, timeout=WAIT)
    assert "word49" not in window.llm_pane.answer.toPlainText()
    assert not window.llm_pane.cancel_button.isVisible()


def test_window_shows_at_once_and_says_when_there_is_no_model(qtbot, tmp_path):
    start = time.monotonic()
    settings = replace(Settings(), data_dir=str(tmp_path / "empty"))
    context, window = make_window(settings, tmp_path / "config")
    qtbot.addWidget(window)
    window.show()
    assert time.monotonic() - start < 2.0
    start_background(context, window)
    qtbot.waitUntil(lambda: window.model_banner.isVisible(), timeout=WAIT)
    assert "no model" in window.model_banner.text.text().lower()
    assert window.model_banner.action_button.text() == "Train the default model"
    assert not window.case_view.analyze_button.isEnabled()
    window.close()


def test_errors_reach_the_message_bar(qtbot, gui):
    window = gui()
    window.case_view.open_file(Path("/nonexistent/case.txt"))
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT)
    assert window.message_bar.level == "error"
    assert "case.txt" in window.message_bar.text.text()


def test_open_txt_file_and_layout_is_remembered(qtbot, gui, tmp_path):
    window = gui()
    case = tmp_path / "note.txt"
    case.write_text(OTHER_CASE + "\n", encoding="utf-8")
    window.case_view.open_file(case)
    qtbot.waitUntil(lambda: window.case_view.editor.toPlainText() == OTHER_CASE, timeout=WAIT)
    assert "note.txt" in window.case_view.source_label.text()
    window.resize(780, 700)  # inside the offscreen screen (800 x 800)
    qtbot.wait(50)  # let the layout settle at that size
    window.case_view.splitter.setSizes([420, 330])
    sizes = window.case_view.splitter.sizes()
    window.save_layout()
    assert (tmp_path / "config" / "window.ini").exists()
    again = gui()
    qtbot.wait(50)
    assert again.size() == window.size()
    assert again.case_view.splitter.sizes() == sizes


def test_screenshot_command_saves_the_pictures(home, tmp_path, llm_server):
    config = home / "config"
    config.mkdir(exist_ok=True)
    (config / "settings.json").write_text(json.dumps({
        "version": 2, "llm_backend": "openai", "llm_base_url": llm_server.url,
        "llm_model": "scripted"}), encoding="utf-8")
    out = tmp_path / "shots"
    run_cli(home, "--screenshot", str(out), env={"QT_QPA_PLATFORM": "offscreen"})
    for name in ("main-window.png", "llm-pane.png", "history.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")


def test_a_remote_backend_shows_what_it_will_send_first(qtbot, gui):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    with serving(LLM_ANSWER, host=address) as remote:
        window = gui(llm_base_url=remote.url, allow_remote=True)
        assert window.remote_badge.isVisible() and not window.llm_pane.remote_badge.isHidden()
        type_and_analyze(qtbot, window, "Maria Lopez (phone 555-123-4567) says " + NEGATIVE_CASE)
        preview = window.llm_pane.preview
        qtbot.waitUntil(lambda: window.llm_pane.preview_box.isVisible(), timeout=WAIT)
        assert remote.requests == []  # nothing leaves before the reviewer says so
        assert "[PHONE]" in preview.toPlainText()
        assert "555-123-4567" not in preview.toPlainText()
        qtbot.mouseClick(window.llm_pane.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.case_view.state.opinion is not None, timeout=WAIT)
        sent = remote.requests[-1]["messages"][-1]["content"]
        assert "555-123-4567" not in sent and "[PHONE]" in sent


def test_views_read_the_typed_records():
    """The pure pieces the views are made of, from the typed records the store hands back
    (``StoredRecord.value``, rebuilt from the stored JSON)."""
    from app.store.records import Judgement, Review, StoredRecord
    from app.ui.attribution_view import faithfulness_texts, flip_text, status_text
    from app.ui.llm_pane import findings_html, timing_text, verdict
    from app.ui.result_panel import decision_texts, label_text, set_text
    from app.ui.review_panel import judgement_text, override_problem, review_line
    from explainers.types import Finding, Flip
    from tests.store_helpers import attribution, escalation, opinion, prediction

    def stored(kind: str, record):
        data = json.loads(json.dumps(record.to_dict()))
        return StoredRecord(1, kind, 1, "2026-01-02T10:30:00+00:00", "0" * 64, data).value

    p, d = stored("prediction", prediction()), stored("escalation", escalation())
    assert p == prediction() and d == escalation()
    assert label_text(p) == "negative  ·  80 %"
    assert set_text(p, d) == ("Prediction set {negative} — contains the true label 90 % of "
                              "the time.")
    badge, tone, reasons, guarantee = decision_texts(d)
    assert (badge, tone) == ("ESCALATE", "escalate") and reasons and guarantee
    assert decision_texts(replace(d, decision="auto"))[:3] == ("AUTO", "auto", [])
    assert decision_texts(None)[0] == "NO POLICY"

    a = stored("attribution", attribution())
    assert faithfulness_texts(a)[2].startswith("the words matter (AOPC comprehensiveness 0.50")
    assert faithfulness_texts(replace(a, faithfulness=None)) is None
    assert flip_text(a) == ""
    flipped = replace(a, flip=Flip(("rash",), ((4, 8),), "positive", 3, 5))
    assert "removing “rash” changes the label from negative to positive" in flip_text(flipped)
    assert status_text(a) == "Partition SHAP · 40 model calls · 0.20 s"
    assert "refining" in status_text(replace(a, final=False))

    o = stored("opinion", opinion())
    assert "agrees" in verdict(o, "negative")[0]
    assert "DISAGREES" in verdict(o, "positive")[0]
    assert verdict(replace(o, label=None, error="timed out"), "negative") == (
        "No second opinion: timed out", "danger")
    warned = replace(o, check=(Finding("not_in_text", "warning", "unicorn is not in the text"),))
    assert "⚠ <b>unicorn is not in the text</b>" in findings_html(warned)
    assert timing_text(o) == "2.0 s · first words after 0.5 s · 100 tokens in, 20 out"

    review = Review(id=3, case_id=1, reviewer="Ann", decision="override", label="neutral",
                    reason="relapse", meaning="approved", signed_at="2026-01-02T10:30:00+00:00",
                    case_sha256="ab" * 32, prediction_id=1, supersedes_id=None)
    assert Review.from_dict(json.loads(json.dumps(review.to_dict()))) == review
    assert review_line(review) == ("Overridden → neutral — “relapse”. Signed by Ann on "
                                   "2026-01-02 10:30:00 UTC, meaning “approved”: signature "
                                   "missing.")
    assert review_line(replace(review, decision="defer", reason=None)).startswith(
        "Deferred. Signed by Ann")
    assert override_problem("negative", "why", "negative").startswith("“negative” is the model")
    assert override_problem("neutral", " ", "negative").startswith("Give a reason")
    assert override_problem("neutral", "mixed", "negative") is None
    judged = Judgement(7, 1, "2026-01-02T10:30:00+00:00", "ann", "neutral", "mixed")
    assert judgement_text(judged, "negative").startswith("Your blind judgement: neutral "
                                                         "(“mixed”), recorded 2026-01-02")
    assert "you differ: override to “neutral”" in judgement_text(judged, "negative")
    assert "you agree" in judgement_text(judged, "neutral")
    assert "could not tell" in judgement_text(replace(judged, label=None), "negative")


def test_menu_actions_open_their_windows(qtbot, gui):
    from PySide6.QtWidgets import QApplication, QDialog

    window = gui()
    for action in (window.act_settings, window.act_models, window.act_import, window.act_about,
                   window.act_keys, window.act_sign_in):
        before = {id(w) for w in QApplication.topLevelWidgets() if w.isVisible()}
        action.trigger()
        opened = [w for w in QApplication.topLevelWidgets()
                  if w.isVisible() and id(w) not in before and isinstance(w, QDialog)]
        assert opened, action.text()
        for dialog in opened:
            dialog.close()
    assert not window.message_bar.isVisible() or window.message_bar.level != "error"
    shortcuts = {a.shortcut().toString() for a in window.actions()}
    assert {"Ctrl+Return", "Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+L", "Ctrl+O"} <= shortcuts


def test_every_answer_links_to_its_model_card(qtbot, gui):
    from PySide6.QtWidgets import QApplication

    from app.ui.models_dialog import ModelCardDialog

    window = gui()
    type_and_analyze(qtbot, window, OTHER_CASE)
    link = window.findChild(QLabel, "modelCardLink")
    model_id = window.context.workbench.model_id
    qtbot.waitUntil(lambda: model_id in link.text(), timeout=WAIT)
    link.linkActivated.emit(model_id)
    cards = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, ModelCardDialog) and w.isVisible()]
    assert cards
    for card in cards:
        card.close()


def test_a_case_the_history_cannot_take_stays_on_screen_and_can_be_retried(qtbot, gui, home):
    import sqlite3

    window = gui(open_llm_on_escalation=False)
    view, bar = window.case_view, window.message_bar
    holder = sqlite3.connect(home / "casewise.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the history past the wait
    try:
        type_and_analyze(qtbot, window, OTHER_CASE)
        qtbot.waitUntil(lambda: "NOT stored" in bar.text.text(), timeout=WAIT)
        assert view.state.prediction is not None and view.state.case_id is None
        qtbot.waitUntil(lambda: view.state.attribution is not None, timeout=WAIT)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert bar.action_button.isVisible() and bar.action_button.text() == "Retry saving"
    bar.action_button.click()
    qtbot.waitUntil(lambda: view.state.case_id is not None, timeout=WAIT)
    record = window.context.store.get_case(view.state.case_id)
    assert record.text == OTHER_CASE and record.attribution is not None


def test_a_damaged_history_is_left_alone_and_a_backup_copy_offered(qtbot, home, tmp_path):
    from app.store import backup_store, open_store

    db = home / "casewise.db"
    with open_store(db) as store:
        store.add_case("a case from before the damage")
    backup_store(db)
    with open(db, "r+b") as handle:  # garbage over the middle of the file
        handle.seek(db.stat().st_size // 2)
        handle.write(b"\xde\xad" * 2048)
    damaged = db.read_bytes()
    settings = replace(Settings(), data_dir=str(home), review_queue=False)
    context, window = started_window(qtbot, settings, tmp_path / "config")
    bar = window.message_bar
    qtbot.waitUntil(lambda: bar.action_button.isVisible(), timeout=WAIT)
    assert "backup" in bar.action_button.text()
    bar.action_button.click()
    qtbot.waitUntil(lambda: context.store is not None, timeout=WAIT)
    assert "restored" in context.store.location
    assert context.store.find_cases().total == 1
    assert db.read_bytes() == damaged
    window.close()


@pytest.mark.postgresql
def test_a_team_database_that_is_down_at_start_offers_retry_and_the_local_history(
        qtbot, home, tmp_path, pg_cluster, pg_url, monkeypatch):
    """The window opens anyway and says so; Retry works once the server is back; "Use the
    local history" opens this computer's own file meanwhile."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    monkeypatch.setenv("CASEWISE_DB_PASSWORD", url.password)
    typed = url._replace(password=None).render_as_string(hide_password=False)
    settings = replace(Settings(), data_dir=str(home), review_queue=False, database_url=typed)
    pg_cluster.stop()
    try:
        context, window = started_window(qtbot, settings, tmp_path / "config")
        bar = window.message_bar
        qtbot.waitUntil(lambda: bar.second_button.isVisible(), timeout=WAIT)
        assert "cannot be reached" in bar.text.text() and url.password not in bar.text.text()
        assert (bar.action_button.text(), bar.second_button.text()) == \
            ("Retry", "Use the local history")
        assert context.store is None
    finally:
        pg_cluster.start()
    bar.action_button.click()  # the server is back: Retry opens the team's history
    qtbot.waitUntil(lambda: context.store is not None, timeout=WAIT)
    assert context.store.location.startswith("postgresql+psycopg://")
    assert url.password not in context.store.location
    context.store.add_case("A case for the team.")
    pg_cluster.stop()  # down again: this time the reviewer works on the local history
    try:
        context.open_store()
        qtbot.waitUntil(lambda: context.store is None and bar.second_button.isVisible(),
                        timeout=WAIT)
        bar.second_button.click()
        qtbot.waitUntil(lambda: context.store is not None, timeout=WAIT)
        assert context.store.location.endswith("casewise.db")
    finally:
        pg_cluster.start()
    window.close()
