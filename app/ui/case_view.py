"""The case view: type, paste or open a case, analyse it, and review it.

One case goes through ``app.pipeline.run_case`` off the GUI thread (decide, store, explain,
ask, store); the view only shows what the pipeline reports as it goes (the decision, the
coarse then final attribution, the LLM's text, each write) and holds display state. The
database writes run on the one database worker (``SerialisedStore``). A case reopened from
the history continues through the same function from what is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
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

from app.pipeline import ASK_ALWAYS, ASK_ESCALATED, ASK_NEVER, CaseResult, Listener, Steps
from app.ui.attribution_view import AttributionView, preload
from app.ui.context import AppContext
from app.ui.llm_pane import LLMPane
from app.ui.result_panel import ResultPanel, muted, section_title
from app.ui.review_panel import CANNOT_TELL, ReviewPanel, judgement_text, review_line
from app.ui.sign_dialog import SignDialog, SignRequest, open_sign_dialog
from app.ui.sign_in_dialog import open_sign_in
from app.ui.signatures import signer_text
from app.ui.tasks import SerialisedStore, Task, TaskContext
from models.types import CaseInput

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
METADATA_SHOWN = 3  # fields of a case's metadata shown beside its source


@dataclass
class CaseState:
    """One case as the window shows it: the pipeline's result (typed records) and its reviews.

    ``version`` is the case version the screen shows (``CaseWrite.version_sha256`` of the last
    write the view was told of): a review signs that, and the store refuses it if a later
    write changed the case meanwhile."""

    result: CaseResult
    reviews: list = field(default_factory=list)  # app.store.Review, oldest first
    version: str | None = None
    blind: bool = False  # the model's answer is hidden until a first judgement
    judgements: list = field(default_factory=list)  # app.store.Judgement: blind, oldest first

    def __getattr__(self, name: str) -> Any:
        # text, source, prediction, decision, attribution, opinion, case_id: the result's
        if name in {"text", "prediction", "decision", "attribution", "opinion", "case_id",
                    "escalated", "store_error"}:
            return getattr(self.result, name)
        raise AttributeError(name)

    @property
    def source(self) -> str:
        return self.result.case.source

    @property
    def metadata(self) -> dict:
        return self.result.case.metadata

    @property
    def label(self) -> str | None:
        return self.result.prediction.label if self.result.prediction else None

    @property
    def labels(self) -> list[str]:
        return self.result.prediction.labels if self.result.prediction else []

    @classmethod
    def from_record(cls, record) -> CaseState:
        """From an ``app.store.CaseRecord``: its latest record of each kind, typed."""
        def latest(kind: str):
            stored = getattr(record, kind)
            return None if stored is None else stored.value

        result = CaseResult(CaseInput(record.text, record.source, dict(record.metadata)),
                            latest("prediction"), latest("escalation"), latest("attribution"),
                            latest("opinion"), case_id=record.id,
                            version=record.version_sha256, audit_sample=record.audit_sample)
        return cls(result, list(record.reviews), record.version_sha256,
                   judgements=list(record.judgements))

    @property
    def judged(self) -> bool:
        """Someone has reviewed or judged it: blind mode has nothing left to hide."""
        return bool(self.reviews or self.judgements)


# -- the work, run off the GUI thread (plain functions of plain data) -----------------------------

def run_case(context: AppContext, bench, result: CaseResult, steps: Steps,
             ctx: TaskContext, store=None) -> CaseResult:
    """The pipeline for the window: every partial result goes to the GUI thread tagged."""
    from app import pipeline

    def send(tag: str) -> Callable[[Any], None]:
        return lambda value: ctx.partial((tag, value))

    listener = Listener(decided=send("decided"), stored=send("stored"), coarse=send("coarse"),
                        explained=send("explained"), llm_text=send("llm_text"),
                        progress=ctx.progress)
    if steps.explain:
        preload()  # the view renders the attribution next, on the GUI thread
    return pipeline.run_case(bench, result, store=store, steps=steps,
                             llm=context.llm_choice() if steps.ask != ASK_NEVER else None,
                             listener=listener, cancel=ctx.cancel)


def load_state(store, case_id: int) -> CaseState:
    preload()  # the view renders its attribution next, on the GUI thread
    return CaseState.from_record(store.get_case(case_id))




def preview_one(context: AppContext, bench, result: CaseResult):
    from app.pipeline import preview

    return preview(context.llm_backend(), bench, result).to_dict()


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


def metadata_text(metadata: dict, limit: int = METADATA_SHOWN) -> str:
    """The first few metadata fields as "key value" pairs (all of them in the tooltip)."""
    pairs = [f"{key} {value}" for key, value in metadata.items() if str(value).strip()]
    more = f" (+{len(pairs) - limit} more)" if len(pairs) > limit else ""
    return " · ".join(pairs[:limit]) + more


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
        self._llm_streaming = False  # the current case's task is streaming the LLM's answer
        self._skip_preview = False
        self.deferred_here: set[int] = set()  # deferred in this session: the queue skips them
        self.queue_status = ""  # what the queue holds, as its last step said
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
        """The model's answer scrolls; the review stays in view below it, so the decision
        can be made (and its signature read) in a 720-px window without scrolling."""
        side = QWidget(objectName="sideBlock")
        column = QVBoxLayout(side)
        column.setContentsMargins(12, 0, 4, 0)
        column.setSpacing(10)
        scroll = QScrollArea()
        scroll.setObjectName("resultScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 4, 0)
        self.result = ResultPanel()
        layout.addWidget(self.result)
        layout.addStretch(1)
        scroll.setWidget(inner)
        column.addWidget(scroll, 1)
        self.review = ReviewPanel()
        column.addWidget(self.review)
        side.setMinimumWidth(320)
        return side

    def _connect(self) -> None:
        self.editor.textChanged.connect(self._text_edited)
        self.attribution.cancel_requested.connect(self.cancel)
        self.review.review_requested.connect(self.sign)
        self.review.blind_judgement.connect(self.record_blind)
        self.llm.ask_requested.connect(self.ask_llm)
        self.llm.cancel_requested.connect(self.cancel_llm)
        self.llm.send_confirmed.connect(self._send_confirmed)
        self.llm.ask_again_confirmed.connect(lambda: self._ask_llm(again=True))
        self.llm.auto_open_changed.connect(self._auto_open_changed)
        self.llm.send_declined.connect(lambda: self.llm.show_message("Nothing was sent."))
        self.context.settings_changed.connect(self._settings_changed)
        self._settings_changed(self.context.settings)
        self.context.account_changed.connect(self.review.set_signer)
        self.review.set_signer(None)
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

    def _auto_open_changed(self, wanted: bool) -> None:
        from dataclasses import replace

        settings = self.context.settings
        if settings.open_llm_on_escalation != wanted:
            self.context.update_settings(replace(settings, open_llm_on_escalation=wanted))

    def _settings_changed(self, settings) -> None:
        self.review.set_meaning(settings.signature_meaning)
        self.llm.set_backend(settings.llm_backend, settings.llm_model,
                             settings.llm_base_url or None, remote_settings(settings))
        self.llm.set_auto_open(settings.open_llm_on_escalation)

    # -- running work for the current case -------------------------------------------------------
    def _begin(self, state: CaseState | None) -> int:
        """A new current case: cancel the old one's work and forget its late results."""
        self.cancel()
        self._tasks = []  # the cancelled ones wind down on their own; the new case is idle
        self.busy_changed.emit(False)
        self._generation += 1
        self.state = state
        self._llm_text = []
        self._llm_streaming = False
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
        """Stop the LLM's answer. The pipeline asks after it explains, so while the answer
        streams, cancelling the case's task stops only the answer (kept as cancelled)."""
        if not self._llm_streaming:
            return
        for task in list(self._tasks):
            if task.name in ("second opinion", "analyze"):
                task.cancel()

    def _message(self, level: str, text: str) -> None:
        self.context.message.emit(level, text)

    # -- 1. analyse: the pipeline, from the text to the stored answer ----------------------------
    def new_case(self) -> None:
        self._begin(None)
        self.editor.clear()
        self._source = ("typed", {})
        self.show_source("", {})
        self._show_nothing()
        self.editor.setFocus()

    def set_case_text(self, text: str, source: str = "typed", metadata: dict | None = None
                      ) -> None:
        self._begin(None)
        self.editor.setPlainText(text)
        self._source = (source, metadata or {})
        self.show_source("" if source == "typed" else f"from {source}", metadata or {})
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
        state = CaseState(CaseResult(CaseInput(text, source, metadata)),
                          blind=self.context.settings.blind_review)
        self._begin(state)
        self.result.clear("Analyzing…")
        self.attribution.show_text(text)
        self.llm.clear()
        self.review.set_enabled(False)
        self.edit_note.hide()
        if self.context.store is None:
            self._message("warning", "The case history is not open: this case is analysed "
                                     "but not stored, and cannot be reviewed.")
        self._run(explain=True)

    def _steps(self, explain: bool, ask: str | None = None) -> Steps:
        """What to run: attributions, and the LLM by itself for an escalated case unless the
        reviewer must first see what would leave the machine (a remote server)."""
        settings = self.context.settings
        if ask is None:
            needs_preview = remote_settings(settings) and not self._skip_preview
            ask = ASK_ESCALATED if settings.open_llm_on_escalation and not needs_preview \
                else ASK_NEVER
        return Steps(explain=explain, ask=ask, store=self.context.store is not None,
                     audit_share=self.context.settings.audit_share)

    def _run(self, explain: bool, ask: str | None = None) -> Task | None:
        """Run the pipeline on the current case from where it stands."""
        state, bench, generation = self.state, self.context.workbench, self._generation
        steps = self._steps(explain, ask)
        store = None if self.context.store is None else \
            SerialisedStore(self.context.store, self.context.runner)
        name = "second opinion" if not steps.explain or state.attribution is not None \
            else "analyze"
        if steps.explain and state.attribution is None and not state.blind:
            self.attribution.set_busy(True)
        if steps.ask != ASK_NEVER and (steps.ask == ASK_ALWAYS or state.escalated):
            self._start_llm_stream()
        return self._compute(name, lambda ctx: run_case(self.context, bench, state.result,
                                                        steps, ctx, store)) \
            .on_partial(self._current(generation, self._partial)) \
            .on_progress(self._current(generation, self.attribution.set_progress)) \
            .on_success(self._current(generation, self._finished)) \
            .on_cancelled(self._current(generation, self._stopped)) \
            .on_failure(self._current(generation, self._failed)).start()

    def _partial(self, tagged: tuple[str, Any]) -> None:
        tag, value = tagged
        {"decided": self._decided, "stored": self._stored, "coarse": self._coarse,
         "explained": self._explained, "llm_text": self._llm_piece}[tag](value)

    def _decided(self, result: CaseResult) -> None:
        self._show_state()
        if result.escalated and self._steps(True).ask == ASK_ESCALATED:
            self._start_llm_stream()

    def _stored(self, write) -> None:
        """A write landed: the case's new version, and its row for the history."""
        first = self.state.version is None
        self.state.version = write.version_sha256
        self.context.cases_changed.emit(write.summary)
        if first:
            self.state_changed.emit(self.state)
            self.review.set_enabled(not self.edit_note.isVisible())

    def _finished(self, result: CaseResult) -> None:
        self._llm_streaming = False
        self.attribution.set_busy(False)
        self.llm.set_busy(False)
        if result.opinion is not None and not self.state.blind:
            self.llm.show_opinion(result.opinion, self.state.label)
        if result.attribution is None and not self.state.blind:
            self._show_attribution()
        if result.store_error is not None:
            self._not_stored(str(result.store_error))
        elif result.escalated and result.opinion is None and \
                self.context.settings.open_llm_on_escalation and self._can_preview():
            # A remote server: the reviewer sees what would be sent first (once this task
            # has wound down, so the view is no longer busy).
            QTimer.singleShot(0, self._current(self._generation, self.ask_llm))

    def _can_preview(self) -> bool:
        settings = self.context.settings
        return remote_settings(settings) and settings.allow_remote and not self._skip_preview

    def _failed(self, _message: str) -> None:
        self._llm_streaming = False
        self.attribution.set_busy(False)
        self.llm.set_busy(False)
        if self.state.prediction is None:
            self.result.clear("The analysis failed: the message above says why.")
        elif self.state.attribution is None and not self.state.blind:
            self.attribution.show_text(self.state.text, "Attributions were not computed "
                                                        "(cancelled or failed).")

    def _stopped(self) -> None:
        self._failed("")

    def _not_stored(self, text: str) -> None:
        """The history could not take the case: the answer stays on screen, the message
        offers to retry (``file_case`` stores whatever the case has, whole)."""
        self.context.offer.emit(
            "error", f"This case was analysed but NOT stored: {text} Nothing was half-written; "
                     "the answer stays here.", "Retry saving", self._retry_saving)

    def _retry_saving(self) -> None:
        from app.pipeline import file_case

        store, state, generation = self.context.store, self.state, self._generation
        if store is None or state is None:
            return
        self._db("store case", lambda: file_case(store, state.result)) \
            .on_success(self._current(generation, self._stored)) \
            .on_failure(self._current(generation, self._not_stored)).start()

    # -- 2. attributions -------------------------------------------------------------------------
    def _coarse(self, attribution) -> None:
        if not self.state.blind:
            self.attribution.show_attribution(self.state.text, attribution)

    def _explained(self, attribution) -> None:
        self.attribution.set_busy(False)
        if not self.state.blind:
            self.attribution.show_attribution(self.state.text, attribution)

    # -- 3. the LLM's second opinion -------------------------------------------------------------
    def ask_llm(self) -> None:
        """Open the pane and ask (on request, or by itself for an escalated case). A case
        that has its opinion is asked again only once the reviewer confirms: the same model
        answers the same (greedy decoding), and the answer is filed again."""
        self._ask_llm(again=False)

    def _ask_llm(self, again: bool) -> None:
        state, bench = self.state, self.context.workbench
        self.llm_wanted.emit()
        if state is None or state.prediction is None or bench is None:
            self.llm.show_message("Analyze a case first; then ask for a second opinion.")
            return
        if self.busy:
            self.llm.show_message("Wait for the analysis to finish, then ask again.")
            return
        if state.opinion is not None and not again:
            self.llm.confirm_again()
            return
        if self._can_preview():
            self._preview()
        else:
            self._ask()

    def _preview(self) -> None:
        state, bench, generation = self.state, self.context.workbench, self._generation
        self.llm.show_message("Preparing the de-identified copy to show you before sending…")
        self._compute("preview", lambda _ctx: preview_one(self.context, bench, state.result)) \
            .on_success(self._current(generation, self.llm.show_preview)).start()

    def _send_confirmed(self, skip_from_now: bool) -> None:
        self._skip_preview = self._skip_preview or skip_from_now
        self._ask()

    def _ask(self) -> None:
        self.state.result.opinion = None  # asked again on request: a new opinion
        self._run(explain=False, ask=ASK_ALWAYS)

    def _start_llm_stream(self) -> None:
        self._llm_streaming = True
        self.llm_wanted.emit()
        self._llm_text = []
        self.llm.start_stream(self.state.label)
        if self.state.blind:
            self.llm.show_message("Blind review: the AI's opinion is hidden until you record "
                                  "your judgement.")

    def _llm_piece(self, piece: str) -> None:
        self._llm_text.append(piece)
        if not self.state.blind:
            self.llm.append_text(piece)

    # -- 4. review -------------------------------------------------------------------------------
    def sign(self, decision: str, label: str | None, reason: str | None, meaning: str) -> None:
        state, store = self.state, self.context.store
        if state is None or state.case_id is None or store is None:
            self._message("warning", "Analyze the case first: only stored cases can be signed.")
            return
        self._ask_signature(decision, label, reason, meaning, self._signed)

    def _ask_signature(self, decision: str, label: str | None, reason: str | None,
                       meaning: str, done: Callable) -> SignDialog | None:
        """Ask the signer for their password (and login id when the session needs it), then
        sign the version on screen (the store refuses it if the case changed since). The
        signer is the user signed in, never a name from the settings."""
        if self.context.has_users is False:
            self.context.offer.emit(
                "warning", "Reviews are signed by a user of the case history, and it has none "
                "yet: create its first admin, then sign.", "Create the first admin",
                lambda: open_sign_in(self.context, self.window()))
            return None
        generation = self._generation
        request = SignRequest(self.state.case_id, self.state.version, decision, label, reason,
                              meaning)
        self.review.set_enabled(False)
        dialog = open_sign_dialog(self.context, request, self)
        dialog.signed.connect(self._current(generation, done))
        dialog.failed.connect(self._current(generation, self._sign_failed))
        dialog.rejected.connect(self._current(generation, lambda: self.review.set_enabled(True)))
        return dialog

    def _sign_failed(self, message: str) -> None:
        self.review.set_enabled(True)
        self.review.show_error(message)
        if "changed since" in message and self.state is not None:
            # Another process stored something for this case: show what would be signed.
            self.load_case(self.state.case_id)
            self._message("warning", message)

    def _signed(self, write) -> None:
        review, case_id = write.review, self.state.case_id
        self.state.reviews.append(review)
        self.review.show_reviews(self.state.reviews)
        self.review.set_enabled(True)
        if review.decision == "defer":
            self.deferred_here.add(case_id)
        else:
            self.deferred_here.discard(case_id)
        # Stays on screen when the queue moves on: what was signed, by whom, when, meaning.
        self.review.show_last_signed(f"Last signed: case {case_id} — {review_line(review)}")
        self.context.cases_changed.emit(write.summary)
        self.state_changed.emit(self.state)
        self._message("info", f"Case {case_id}: {review.decision} signed by "
                              f"{signer_text(review)}.")
        if self.context.settings.review_queue:
            self.next_case()

    def record_blind(self, label: str, note: str) -> None:
        """The blind first judgement is recorded as a judgement (an audit event, not a
        signature); then the model's answer is revealed and the reviewer signs."""
        state, store = self.state, self.context.store
        if state is None or state.case_id is None or store is None:
            self._message("warning", "The case is still being stored; try again in a moment.")
            return
        kept = None if label == CANNOT_TELL else label
        generation, case_id = self._generation, state.case_id
        self.review.set_enabled(False)
        self._db("record judgement",
                 lambda: store.record_judgement(case_id, kept, note)) \
            .on_success(self._current(generation, self._revealed)) \
            .on_failure(self._current(generation,
                                      lambda _m: self.review.set_enabled(True))).start()

    def _revealed(self, judgement) -> None:
        self.state.judgements.append(judgement)
        self.state.blind = False
        # No history row changes: a judgement is not in the case list (its row stays blind
        # until a signed review), so nothing is refetched.
        self._show_state()
        self.review.set_enabled(True)
        self.review.accept_button.setFocus()

    # -- 5. the review queue and stored cases ----------------------------------------------------
    def next_case(self) -> None:
        """The next case of the queue: never reviewed first, then deferred before; this
        session's deferrals are skipped (``revisit_deferred`` opens them). Cases other
        reviewers of a shared history hold are skipped; the one opened is claimed for this
        reviewer, and the case left is given back."""
        from app.review_queue import next_in_queue

        store = self.context.store
        if store is None:
            return
        skip, after = frozenset(self.deferred_here), self._case_on_screen()
        me = self.context.actor_name()

        def find():
            if after is not None:
                store.release_claim(after, me)
            return next_in_queue(store, skip, after, claimant=me)

        self._db("find next case", find).on_success(self._next_found).start()

    def revisit_deferred(self) -> None:
        """The cases deferred in this session, one after another."""
        from app.review_queue import revisit

        store = self.context.store
        if store is None:
            return
        skip, after = frozenset(self.deferred_here), self._case_on_screen()
        self._db("find deferred case", lambda: revisit(store, skip, after)) \
            .on_success(self._next_found).start()

    def _case_on_screen(self) -> int | None:
        return None if self.state is None else self.state.case_id

    def _next_found(self, step) -> None:
        self.queue_status = step.describe()
        if step.case_id is None:
            if step.skipped:
                self.context.offer.emit(
                    "info", f"No case left in the queue but the {step.skipped} you deferred "
                            "this session.", "Revisit deferred", self.revisit_deferred)
            else:
                self._message("info", "No unreviewed cases left in the queue.")
            return
        again = " (deferred before)" if step.revisiting else ""
        self._message("info", f"Case {step.case_id}{again}. {step.describe()}")
        self.load_case(step.case_id)

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
        # An audit sample is always judged blind: the monitor needs judgements the model's
        # answer did not steer.
        blind = self.context.settings.blind_review or state.result.audit_sample
        state.blind = blind and not state.judged
        self.state = state
        self._source = (state.source, state.metadata)
        self.editor.blockSignals(True)
        self.editor.setPlainText(state.text)
        self.editor.blockSignals(False)
        sampled = " · audit sample of automatic decisions (reviewed blind)" \
            if state.result.audit_sample else ""
        self.show_source(f"case {state.case_id} · from {state.source}{sampled}", state.metadata)
        self.edit_note.hide()
        self._show_state()
        self.review.set_enabled(state.prediction is not None)
        self.state_changed.emit(state)
        if state.prediction is not None:
            self._continue()

    def _continue(self) -> None:
        """Whatever a reopened case still lacks (its attribution, an escalated case's
        opinion), through the same pipeline; only for the loaded model's own prediction."""
        state, bench = self.state, self.context.workbench
        if bench is None or state.prediction.model_id != bench.model_id:
            return
        wants_opinion = state.escalated and state.opinion is None and \
            self.context.settings.open_llm_on_escalation
        if state.attribution is None or wants_opinion:
            self._run(explain=True)
        if wants_opinion and self._can_preview() and state.attribution is not None:
            self.ask_llm()

    # -- showing the state -----------------------------------------------------------------------
    def _show_nothing(self) -> None:
        self.result.clear()
        self.attribution.clear()
        self.review.set_case([], None)
        self.review.set_blind_stage(False)
        self.review.show_reviews([])
        self.review.set_enabled(False)

    def _show_state(self) -> None:
        from explainers.prompts import label_descriptions

        state = self.state
        self.review.set_case(state.labels, state.label, label_descriptions(state.labels))
        self.review.set_blind_stage(state.blind)
        self.review.show_reviews(state.reviews)
        if state.judgements and not state.blind:
            last = state.judgements[-1]
            self.review.show_judgement(judgement_text(last, state.label), last.label)
        if state.blind:
            self.result.show_blind()
            self.attribution.show_hidden("Blind review: the attributions are hidden until you "
                                         "record your judgement.")
            self.llm.show_message("Blind review: the AI's opinion is hidden until you record "
                                  "your judgement.")
            return
        if state.prediction is not None:
            self.result.show_result(state.prediction, state.decision,
                                    label_descriptions(state.labels))
        self._show_attribution()
        self._show_opinion()

    def _show_attribution(self) -> None:
        if self.state.attribution is not None:
            self.attribution.show_attribution(self.state.text, self.state.attribution)
        else:
            self.attribution.show_text(self.state.text)
        self.attribution.set_busy(any(t.name == "analyze" for t in self._tasks))

    def _show_opinion(self) -> None:
        streaming = self._llm_streaming and self.busy
        if self.state.opinion is not None:
            self.llm.show_opinion(self.state.opinion, self.state.label)
            if self.context.settings.open_llm_on_escalation:  # the reviewer's choice
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

    def show_source(self, where: str, metadata: dict) -> None:
        """Where the case came from, and the columns kept with it (a CSV's own case id...)."""
        shown = metadata_text(metadata)
        self.source_label.setText(where + (f" · {shown}" if shown and where else shown))
        self.source_label.setToolTip("\n".join(f"{k}: {v}" for k, v in metadata.items()))

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

    def __init__(self, parent: QWidget, name: str, columns: list[str], rows: list[dict]) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Pick a case from {name}")
        self.rows = rows
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Text column:"))
        self.column = QComboBox()
        self.column.addItems(columns)
        from models.data import guess_text_column

        guess = guess_text_column(columns, rows)  # the column that reads like prose
        self.column.setCurrentText(guess or (columns[0] if columns else ""))
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

