"""The case view: type, paste or open a case, analyse it, and review it.

One case flows through the core off the GUI thread::

    analyze (compute) -> show -> store (db) -> explain, coarse then refined (compute)
      -> store attribution (db) -> escalated? LLM second opinion streaming (compute)
      -> store opinion (db) -> review (db) -> next unreviewed case (db)

Every step keeps the case as plain stored dicts (``CaseState``), so a case reopened from the
history is shown by the same code as a fresh one, without recomputing anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.ui.attribution_view import AttributionView, preload
from app.ui.context import AppContext
from app.ui.llm_pane import LLMPane
from app.ui.result_panel import ResultPanel, muted, section_title
from app.ui.review_panel import ReviewPanel, blind_review
from app.ui.tasks import Task, TaskContext

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


@dataclass
class CaseState:
    """One case as the window knows it: the stored records' dicts, newest of each kind."""

    text: str
    source: str = "typed"
    metadata: dict = field(default_factory=dict)
    case_id: int | None = None
    # What a review signs (CaseRecord.version_sha256). Read and written only on the database
    # worker, right after each write, so a review queued behind a write signs the version that
    # includes it (the window shows every record before it queues its storage).
    version: str | None = None
    prediction: dict | None = None
    decision: dict | None = None
    attribution: dict | None = None
    opinion: dict | None = None
    reviews: list[dict] = field(default_factory=list)
    blind: bool = False  # the model's answer is hidden until a first judgement

    @property
    def label(self) -> str | None:
        return self.prediction["label"] if self.prediction else None

    @property
    def labels(self) -> list[str]:
        return list(self.prediction["probabilities"]) if self.prediction else []

    @property
    def escalated(self) -> bool:
        return bool(self.decision) and self.decision["decision"] != "auto"

    @classmethod
    def from_record(cls, record) -> CaseState:
        """From an ``app.store.CaseRecord``."""
        data = {kind: getattr(record, kind).data if getattr(record, kind) else None
                for kind in ("prediction", "attribution", "opinion")}
        decision = record.escalation.data if record.escalation else None
        return cls(record.text, record.source, dict(record.metadata), record.id,
                   record.version_sha256, data["prediction"], decision, data["attribution"],
                   data["opinion"], [asdict(r) for r in record.reviews])


# -- the work, run off the GUI thread (plain functions of plain data) -----------------------------

def analyze_one(bench, text: str, ctx: TaskContext):
    from app.casework import analyze

    return analyze(bench, [text], ctx.progress, ctx.cancel)[0]


def store_unsaved(store, state: CaseState, analysis) -> int:
    """The case and whatever was computed while it could not be stored (a retry); its
    version is read once, after the last write."""
    from app.casework import store_analysis

    case_id, _new = store_analysis(store, analysis, state.source, state.metadata or None)
    for kind in ("attribution", "opinion"):
        if getattr(state, kind) is not None:
            getattr(store, f"record_{kind}")(case_id, getattr(state, kind))
    state.version = store.get_case(case_id).version_sha256
    state.case_id = case_id  # last: the case is filed with everything it had
    return case_id


def explain_one(bench, text: str, ctx: TaskContext) -> dict:
    from app.casework import explain_case

    preload()

    def coarse(attribution) -> None:
        if not attribution.final:  # the final one arrives as the task's result
            ctx.partial(attribution.to_dict())

    return explain_case(bench, text, on_update=coarse, progress=ctx.progress,
                        cancel=ctx.cancel).to_dict()


def record(store, state: CaseState, kind: str, data: dict) -> None:
    """File an attribution or opinion, and note the case's new version."""
    getattr(store, f"record_{kind}")(state.case_id, data)  # record_attribution / _opinion
    state.version = store.get_case(state.case_id).version_sha256


def load_state(store, case_id: int) -> CaseState:
    preload()  # the view renders its attribution next, on the GUI thread
    return CaseState.from_record(store.get_case(case_id))


def next_unreviewed(store) -> int | None:
    page = store.find_cases(reviewed=False, sort="created", page_size=1)
    return page.items[0].id if page.items else None


def ask_one(context: AppContext, bench, state: CaseState, ctx: TaskContext) -> dict:
    """The LLM's opinion as a dict; a backend that cannot start gives a failed opinion."""
    from app.casework import analysis_from_records, ask_llm, attribution_from_dict
    from explainers.second_opinion import failed_opinion
    from models.llm.base import LLMError

    settings = context.settings
    try:
        backend = context.llm_backend()
    except LLMError as exc:
        return failed_opinion(settings.llm_backend, settings.llm_model,
                              settings.llm_base_url or None, str(exc)).to_dict()
    analysis = analysis_from_records(state.text, state.prediction, state.decision)
    attribution = attribution_from_dict(state.attribution) if state.attribution else None
    return ask_llm(backend, bench, analysis, attribution, allow_remote=settings.allow_remote,
                   on_text=ctx.partial, cancel=ctx.cancel).to_dict()


def preview_one(context: AppContext, bench, state: CaseState) -> dict:
    from app.casework import analysis_from_records, attribution_from_dict, llm_preview

    analysis = analysis_from_records(state.text, state.prediction, state.decision)
    attribution = attribution_from_dict(state.attribution) if state.attribution else None
    return llm_preview(context.llm_backend(), bench, analysis, attribution)


def sign(store, state: CaseState, reviewer: str, decision: str, label: str | None,
         reason: str | None, meaning: str) -> dict:
    review = store.add_review(state.case_id, reviewer, decision, label, reason, meaning,
                              expected_sha256=state.version)
    state.version = store.get_case(state.case_id).version_sha256
    return asdict(review)


def read_case_file(path: Path) -> dict:
    """A .txt file's text, or a table's columns and rows (for the row picker)."""
    from models.data import read_table
    from models.errors import DataError

    if path.suffix.lower() not in TABLE_SUFFIXES:
        from models.data import decode_bytes

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"Cannot open {path}: {exc.strerror or exc}.") from exc
        return {"text": decode_bytes(data, path.name)[0].strip()}
    table = read_table(path, None)
    return {"columns": list(table.columns), "rows": list(table.rows)}


def remote_settings(settings) -> bool:
    from models.llm.base import is_local_url

    return settings.llm_backend == "openai" and bool(settings.llm_base_url) and \
        not is_local_url(settings.llm_base_url)


# -- the view --------------------------------------------------------------------------------------

class CaseEditor(QPlainTextEdit):
    """The case text; Ctrl+Enter analyses it (the window's action has the same shortcut)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("caseEditor")
        self.setAccessibleName("Case text")
        self.setPlaceholderText("Paste or type a case here, or open a .txt or a CSV row "
                                "(Ctrl+O).  Ctrl+Enter analyses it.")
        self.setTabChangesFocus(True)  # Tab moves on: keyboard users can leave the editor


class CaseView(QWidget):
    """Editor, model's answer, attributions and review for one case; drives the flow."""

    state_changed = Signal(object)  # CaseState | None: the window updates its actions
    busy_changed = Signal(bool)  # work for the current case is running
    llm_wanted = Signal()  # the LLM pane should be shown

    def __init__(self, context: AppContext, llm_pane: LLMPane,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("caseView")
        self.context = context
        self.llm = llm_pane
        self.state: CaseState | None = None
        self._generation = 0  # bumps with every new case: late results of old ones are dropped
        self._tasks: list[Task] = []
        self._llm_text: list[str] = []
        self._skip_preview = False
        self._source: tuple[str, dict] = ("typed", {})  # where the editor's text came from
        self._build()
        self._connect()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 6)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("caseSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.setObjectName("caseLeftSplitter")
        self.left.setChildrenCollapsible(False)
        self.left.addWidget(self._editor_block())
        self.attribution = AttributionView()
        self.left.addWidget(self.attribution)
        self.left.setStretchFactor(0, 1)
        self.left.setStretchFactor(1, 3)
        self.splitter.addWidget(self.left)
        self.splitter.addWidget(self._side_block())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        outer.addWidget(self.splitter)

    def _editor_block(self) -> QWidget:
        block = QWidget()
        layout = QVBoxLayout(block)
        layout.setContentsMargins(0, 0, 0, 6)
        row = QHBoxLayout()
        row.addWidget(section_title("Case"))
        self.source_label = muted(QLabel())
        self.source_label.setObjectName("caseSource")
        row.addWidget(self.source_label, 1)
        self.open_button = QPushButton("Open…")
        self.open_button.setObjectName("openButton")
        self.open_button.setToolTip("Open a .txt file or pick a row of a CSV (Ctrl+O)")
        self.open_button.clicked.connect(self.choose_file)
        row.addWidget(self.open_button)
        self.analyze_button = QPushButton("Analyze")
        self.analyze_button.setObjectName("analyzeButton")
        self.analyze_button.setToolTip("Classify, decide escalation and explain (Ctrl+Enter)")
        self.analyze_button.setDefault(True)
        self.analyze_button.clicked.connect(self.analyze)
        row.addWidget(self.analyze_button)
        layout.addLayout(row)
        self.editor = CaseEditor()
        layout.addWidget(self.editor)
        self.edit_note = muted(QLabel())
        self.edit_note.hide()
        layout.addWidget(self.edit_note)
        return block

    def _side_block(self) -> QWidget:
        scroll = QScrollArea()
        scroll.setObjectName("resultScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(12, 0, 4, 0)
        layout.setSpacing(18)
        self.result = ResultPanel()
        layout.addWidget(self.result)
        self.review = ReviewPanel()
        layout.addWidget(self.review)
        layout.addStretch(1)
        scroll.setWidget(inner)
        scroll.setMinimumWidth(320)
        return scroll

    def _connect(self) -> None:
        self.editor.textChanged.connect(self._text_edited)
        self.attribution.cancel_requested.connect(self.cancel)
        self.review.review_requested.connect(self.sign)
        self.review.blind_judgement.connect(self.record_blind)
        self.llm.ask_requested.connect(self.ask_llm)
        self.llm.cancel_requested.connect(self.cancel_llm)
        self.llm.send_confirmed.connect(self._send_confirmed)
        self.llm.send_declined.connect(lambda: self.llm.show_message("Nothing was sent."))
        self.context.settings_changed.connect(self._settings_changed)
        self._settings_changed(self.context.settings)
        self._tab_order()

    def _tab_order(self) -> None:
        """Text, then its actions, then the evidence, then the decision."""
        review = self.review
        chain = (self.editor, self.analyze_button, self.open_button,
                 self.attribution.class_combo, self.attribution.browser,
                 review.blind_label, review.blind_note, review.blind_button,
                 review.label_combo, review.reason, review.meaning, review.accept_button,
                 review.override_button, review.defer_button)
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _settings_changed(self, settings) -> None:
        self.review.set_reviewer(settings.reviewer_name(), settings.signature_meaning)
        self.llm.set_backend(settings.llm_backend, settings.llm_model,
                             settings.llm_base_url or None, remote_settings(settings))

    # -- running work for the current case -------------------------------------------------------
    def _begin(self, state: CaseState | None) -> int:
        """A new current case: cancel the old one's work and forget its late results."""
        self.cancel()
        self._tasks = []  # the cancelled ones wind down on their own; the new case is idle
        self.busy_changed.emit(False)
        self._generation += 1
        self.state = state
        self._llm_text = []
        self.state_changed.emit(state)
        return self._generation

    def _current(self, generation: int, callback: Callable) -> Callable:
        def guarded(*args: Any) -> None:
            if generation == self._generation:
                callback(*args)
        return guarded

    def _compute(self, name: str, work: Callable[[TaskContext], Any]) -> Task:
        task = self.context.runner.run(name, work)
        self._track(task)
        return task

    def _db(self, name: str, work: Callable[[], Any]) -> Task:
        return self.context.runner.db(name, work)

    def _track(self, task: Task) -> None:
        self._tasks.append(task)
        self.busy_changed.emit(True)

        def done() -> None:
            self._tasks = [t for t in self._tasks if t is not task]
            self.busy_changed.emit(bool(self._tasks))
        task.on_finished(done)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def cancel(self) -> None:
        """Stop the current case's attributions and LLM answer (what is stored stays)."""
        for task in list(self._tasks):
            task.cancel()

    def cancel_llm(self) -> None:
        for task in list(self._tasks):
            if task.name == "second opinion":
                task.cancel()

    def _message(self, level: str, text: str) -> None:
        self.context.message.emit(level, text)

    # -- 1. analyse ------------------------------------------------------------------------------
    def new_case(self) -> None:
        self._begin(None)
        self.editor.clear()
        self._source = ("typed", {})
        self.source_label.clear()
        self._show_nothing()
        self.editor.setFocus()

    def set_case_text(self, text: str, source: str = "typed", metadata: dict | None = None
                      ) -> None:
        self._begin(None)
        self.editor.setPlainText(text)
        self._source = (source, metadata or {})
        self.source_label.setText("" if source == "typed" else f"from {source}")
        self._show_nothing()

    def analyze(self) -> None:
        text = self.editor.toPlainText()
        bench = self.context.workbench
        if not text.strip():
            self._message("warning", "There is no case text: paste or type it, or open a file.")
            return
        if bench is None:
            self._message("warning", "No model is loaded yet: wait for it, or train one "
                                     "(Models menu).")
            return
        source, metadata = self._source
        generation = self._begin(CaseState(text, source, metadata))
        self.result.clear("Analyzing…")
        self.attribution.show_text(text)
        self.llm.clear()
        self.review.set_enabled(False)
        self.edit_note.hide()
        self._compute("analyze", lambda ctx: analyze_one(bench, text, ctx)) \
            .on_success(self._current(generation, self._analysed)) \
            .on_failure(self._current(generation, lambda _m: self.result.clear(
                "The analysis failed: the message above says why."))).start()

    def _analysed(self, analysis) -> None:
        state = self.state
        state.prediction = analysis.prediction.to_dict()
        state.decision = analysis.decision.to_dict()
        state.blind = self.context.settings.blind_review
        self._show_state()
        store = self.context.store
        if store is None:
            self._message("warning", "The case history is not open: this case is analysed "
                                     "but not stored, and cannot be reviewed.")
            self._explain()
            return
        self._store_case(analysis)

    def _store_case(self, analysis) -> None:
        """File the case; if the history cannot take it (read-only, disk full, locked), the
        answer stays on screen, the work goes on, and the message offers to retry."""
        store, state, generation = self.context.store, self.state, self._generation
        self._db("store case", lambda: store_unsaved(store, state, analysis)) \
            .on_success(self._current(generation, self._stored)) \
            .on_failure(self._current(generation, lambda text: self._not_stored(analysis, text))) \
            .start()

    def _not_stored(self, analysis, text: str) -> None:
        self.context.offer.emit(
            "error", f"This case was analysed but NOT stored: {text} Nothing was half-written; "
                     "the answer stays here.", "Retry saving",
            lambda: self._store_case(analysis))
        if self.state.attribution is None:
            self._explain()  # the reviewer still gets the whole answer on screen

    def _stored(self, case_id: int) -> None:
        self.state.case_id = case_id
        self.context.cases_changed.emit()
        self.state_changed.emit(self.state)
        self.review.set_enabled(True)
        self._continue()

    def _continue(self) -> None:
        """Whatever the current case still lacks: attributions, then the LLM's opinion."""
        state, bench = self.state, self.context.workbench
        same_model = bench is not None and state.prediction is not None and \
            state.prediction["model_id"] == bench.model_id
        if state.attribution is None and same_model:
            self._explain()
        elif state.escalated and state.opinion is None and \
                self.context.settings.open_llm_on_escalation and bench is not None:
            self.ask_llm()

    # -- 2. explain ------------------------------------------------------------------------------
    def _explain(self) -> None:
        bench, text, generation = self.context.workbench, self.state.text, self._generation
        if not self.state.blind:
            self.attribution.set_busy(True)
        self._compute("explain", lambda ctx: explain_one(bench, text, ctx)) \
            .on_partial(self._current(generation, self._coarse)) \
            .on_progress(self._current(generation, self.attribution.set_progress)) \
            .on_success(self._current(generation, self._explained)) \
            .on_cancelled(self._current(generation, self._explain_stopped)) \
            .on_failure(self._current(generation, lambda _m: self._explain_stopped())) \
            .start()

    def _coarse(self, data: dict) -> None:
        if not self.state.blind:
            self.attribution.show_attribution(self.state.text, data)

    def _explained(self, data: dict) -> None:
        self.state.attribution = data
        self.attribution.set_busy(False)
        if not self.state.blind:
            self.attribution.show_attribution(self.state.text, data)
        if self.state.case_id is None:
            return
        self._record("attribution", data, self._continue)

    def _explain_stopped(self) -> None:
        self.attribution.set_busy(False)
        if self.state.attribution is None and not self.state.blind:
            self.attribution.show_text(self.state.text, "Attributions were not computed "
                                                        "(cancelled or failed).")

    def _record(self, kind: str, data: dict, then: Callable[[], None] | None = None) -> None:
        store, state, generation = self.context.store, self.state, self._generation

        def recorded(_none: None) -> None:
            self.context.cases_changed.emit()
            if then is not None:
                then()
        self._db(f"store {kind}", lambda: record(store, state, kind, data)) \
            .on_success(self._current(generation, recorded)).start()

    # -- 3. the LLM's second opinion -------------------------------------------------------------
    def ask_llm(self) -> None:
        """Open the pane and ask (on request, or by itself for an escalated case)."""
        state, bench = self.state, self.context.workbench
        self.llm_wanted.emit()
        if state is None or state.prediction is None or bench is None:
            self.llm.show_message("Analyze a case first; then ask for a second opinion.")
            return
        if any(t.name == "second opinion" for t in self._tasks):
            return
        settings = self.context.settings
        if remote_settings(settings) and settings.allow_remote and not self._skip_preview:
            self._preview()
        else:
            self._ask()

    def _preview(self) -> None:
        state, bench, generation = self.state, self.context.workbench, self._generation
        self.llm.show_message("Preparing the de-identified copy to show you before sending…")
        self._compute("preview", lambda _ctx: preview_one(self.context, bench, state)) \
            .on_success(self._current(generation, self.llm.show_preview)).start()

    def _send_confirmed(self, skip_from_now: bool) -> None:
        self._skip_preview = self._skip_preview or skip_from_now
        self._ask()

    def _ask(self) -> None:
        state, bench, generation = self.state, self.context.workbench, self._generation
        self._llm_text = []
        self.llm.start_stream(state.label)
        if state.blind:
            self.llm.show_message("Blind review: the AI's opinion is hidden until you record "
                                  "your judgement.")
        self._compute("second opinion", lambda ctx: ask_one(self.context, bench, state, ctx)) \
            .on_partial(self._current(generation, self._llm_piece)) \
            .on_success(self._current(generation, self._answered)) \
            .on_cancelled(self._current(generation, self._llm_stopped)) \
            .on_failure(self._current(generation, lambda _m: self._llm_stopped())).start()

    def _llm_piece(self, piece: str) -> None:
        self._llm_text.append(piece)
        if not self.state.blind:
            self.llm.append_text(piece)

    def _answered(self, opinion: dict) -> None:
        self.state.opinion = opinion
        if not self.state.blind:
            self.llm.show_opinion(opinion, self.state.label)
        if self.state.case_id is not None:
            self._record("opinion", opinion)

    def _llm_stopped(self) -> None:
        self.llm.set_busy(False)

    # -- 4. review -------------------------------------------------------------------------------
    def sign(self, decision: str, label: str | None, reason: str | None, meaning: str) -> None:
        state, store = self.state, self.context.store
        if state is None or state.case_id is None or store is None:
            self._message("warning", "Analyze the case first: only stored cases can be signed.")
            return
        reviewer, generation = self.context.settings.reviewer_name(), self._generation
        self.review.set_enabled(False)
        self._db("sign review", lambda: sign(store, state, reviewer, decision, label, reason,
                                             meaning)) \
            .on_success(self._current(generation, self._signed)) \
            .on_failure(self._current(generation, self._sign_failed)).start()

    def _sign_failed(self, message: str) -> None:
        self.review.set_enabled(True)
        self.review.show_error(message)
        if "changed since" in message and self.state is not None:
            # Another process stored something for this case: show what would be signed.
            self.load_case(self.state.case_id)
            self._message("warning", message)

    def _signed(self, review: dict) -> None:
        self.state.reviews.append(review)
        self.review.show_reviews(self.state.reviews)
        self.review.set_enabled(True)
        self.context.cases_changed.emit()
        self.state_changed.emit(self.state)
        self._message("info", f"Case {self.state.case_id}: {review['decision']} signed by "
                              f"{review['reviewer']}.")
        if self.context.settings.review_queue:
            self.next_case()

    def record_blind(self, label: str, note: str) -> None:
        """The blind first judgement is its own signed review; then the answer is revealed."""
        state = self.state
        if state is None or state.case_id is None:
            self._message("warning", "The case is still being stored; try again in a moment.")
            return
        decision, kept_label, reason = blind_review(label, note, state.label)
        store, reviewer = self.context.store, self.context.settings.reviewer_name()
        generation = self._generation
        self.review.set_enabled(False)
        self._db("sign first judgement", lambda: sign(store, state, reviewer, decision,
                                                      kept_label, reason, "reviewed")) \
            .on_success(self._current(generation, self._revealed)) \
            .on_failure(self._current(generation, self._sign_failed)).start()

    def _revealed(self, review: dict) -> None:
        self.state.reviews.append(review)
        self.state.blind = False
        self.context.cases_changed.emit()
        self._show_state()
        self.review.set_enabled(True)

    # -- 5. the review queue and stored cases ----------------------------------------------------
    def next_case(self) -> None:
        store = self.context.store
        if store is None:
            return
        self._db("find next case", lambda: next_unreviewed(store)) \
            .on_success(self._next_found).start()

    def _next_found(self, case_id: int | None) -> None:
        if case_id is None:
            self._message("info", "No unreviewed cases left in the queue.")
            return
        self.load_case(case_id)

    def load_case(self, case_id: int) -> None:
        """Show a stored case from its records (nothing is recomputed that is stored)."""
        store = self.context.store
        if store is None:
            self._message("warning", "The case history is not open yet.")
            return
        generation = self._begin(None)
        self._db("open case", lambda: load_state(store, case_id)) \
            .on_success(self._current(generation, self._loaded)).start()

    def _loaded(self, state: CaseState) -> None:
        state.blind = self.context.settings.blind_review and not state.reviews
        self.state = state
        self._source = (state.source, state.metadata)
        self.editor.blockSignals(True)
        self.editor.setPlainText(state.text)
        self.editor.blockSignals(False)
        self.source_label.setText(f"case {state.case_id} · from {state.source}")
        self.edit_note.hide()
        self._show_state()
        self.review.set_enabled(state.prediction is not None)
        self.state_changed.emit(state)
        if state.prediction is not None:
            self._continue()

    # -- showing the state -----------------------------------------------------------------------
    def _show_nothing(self) -> None:
        self.result.clear()
        self.attribution.clear()
        self.review.set_case([], None)
        self.review.set_blind_stage(False)
        self.review.show_reviews([])
        self.review.set_enabled(False)

    def _show_state(self) -> None:
        state = self.state
        self.review.set_case(state.labels, state.label)
        self.review.set_blind_stage(state.blind)
        self.review.show_reviews(state.reviews)
        if state.blind:
            self.result.show_blind()
            self.attribution.show_hidden("Blind review: the attributions are hidden until you "
                                         "record your judgement.")
            self.llm.show_message("Blind review: the AI's opinion is hidden until you record "
                                  "your judgement.")
            return
        if state.prediction is not None:
            self.result.show_result(state.prediction, state.decision)
        self._show_attribution()
        self._show_opinion()

    def _show_attribution(self) -> None:
        if self.state.attribution is not None:
            self.attribution.show_attribution(self.state.text, self.state.attribution)
        else:
            self.attribution.show_text(self.state.text)
        self.attribution.set_busy(any(t.name == "explain" for t in self._tasks))

    def _show_opinion(self) -> None:
        streaming = any(t.name == "second opinion" for t in self._tasks)
        if self.state.opinion is not None:
            self.llm.show_opinion(self.state.opinion, self.state.label)
            self.llm_wanted.emit()
        elif streaming:
            self.llm.start_stream(self.state.label)
            self.llm.append_text("".join(self._llm_text))
            self.llm_wanted.emit()
        else:
            self.llm.clear()

    def _text_edited(self) -> None:
        state = self.state
        edited = state is not None and self.editor.toPlainText() != state.text
        self.edit_note.setText("Edited since the analysis: analyze again (Ctrl+Enter) before "
                               "you review." if edited else "")
        self.edit_note.setVisible(edited)
        if state is not None and state.case_id is not None:
            self.review.set_enabled(not edited)

    # -- opening files ---------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a case", "", "Cases (*.txt *.csv *.tsv *.jsonl);;All files (*)")
        if path:
            self.open_file(Path(path))

    def open_file(self, path: Path) -> None:
        """Read a file off the GUI thread (on the compute pool: the database worker stays
        free for the history); a table asks which row is the case."""
        self.context.runner.run("open file", lambda _ctx: read_case_file(path)) \
            .on_success(lambda content: self._file_read(path, content)).start()

    def _file_read(self, path: Path, content: dict) -> None:
        if "text" in content:
            self.set_case_text(content["text"], path.name)
            return
        picked = RowPicker.pick(self, path.name, content["columns"], content["rows"])
        if picked is not None:
            row, column = picked
            text = str(content["rows"][row].get(column) or "")
            self.set_case_text(text, f"{path.name}:{row + 1}",
                               {k: v for k, v in content["rows"][row].items() if k != column})


class RowPicker(QDialog):
    """Pick one row of a table as the case: a text column and a filterable list of rows."""

    GUESSES = ("text", "review", "case", "body", "content", "note")

    def __init__(self, parent: QWidget, name: str, columns: list[str], rows: list[dict]) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Pick a case from {name}")
        self.rows = rows
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Text column:"))
        self.column = QComboBox()
        self.column.addItems(columns)
        guess = next((c for c in self.GUESSES if c in columns), columns[0] if columns else "")
        self.column.setCurrentText(guess)
        top.addWidget(self.column, 1)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter rows…")
        top.addWidget(self.filter, 2)
        layout.addLayout(top)
        self.list = QListWidget()
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.column.currentTextChanged.connect(self._fill)
        self.filter.textChanged.connect(self._fill)
        self.list.itemActivated.connect(lambda _item: self.accept())
        self.resize(720, 480)
        self._fill()

    def _fill(self) -> None:
        column, needle = self.column.currentText(), self.filter.text().lower()
        self.list.clear()
        for index, row in enumerate(self.rows):
            text = str(row.get(column) or "")
            if needle in text.lower():
                self.list.addItem(f"{index + 1}: {text[:160]}")
                self.list.item(self.list.count() - 1).setData(Qt.ItemDataRole.UserRole, index)
        self.list.setCurrentRow(0)

    @classmethod
    def pick(cls, parent: QWidget, name: str, columns: list[str], rows: list[dict]
             ) -> tuple[int, str] | None:
        dialog = cls(parent, name, columns, rows)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.list.currentItem() is None:
            return None
        return dialog.list.currentItem().data(Qt.ItemDataRole.UserRole), dialog.column.currentText()

