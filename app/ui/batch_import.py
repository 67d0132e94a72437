"""Batch import: score a CSV/TSV/JSONL file or a folder of .txt files in the background.

The scoring is ``app.pipeline.run_batch``, the same function ``python main.py score`` runs; it
runs on the compute pool, and every call it makes to the case history goes through
``SerialisedStore`` to the one database worker, so the history list keeps paging while cases
land. Re-importing a file skips the cases already stored, so a cancelled import resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.tasks import SerialisedStore, Task, format_duration

PREVIEW_ROWS = 5
PREVIEW_CHARS = 200
LANDED_SIGNAL_MS = 1000  # how often the history hears "cases changed" during an import


def read_preview(path: Path, encoding: str | None = None) -> dict:
    """What the dialog shows before scoring: the columns and first rows of a table, or the
    first files of a folder (runs on the compute pool: files can be large)."""
    from models.data import read_table

    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        rows = [[f.name, f.read_text(encoding=encoding or "utf-8", errors="replace")
                 [:PREVIEW_CHARS]] for f in files[:PREVIEW_ROWS]]
        return {"columns": ["file", "text"], "rows": rows, "count": len(files), "table": False}
    table = read_table(path, encoding)
    rows = [[str(row.get(c, ""))[:PREVIEW_CHARS] for c in table.columns]
            for row in table.rows[:PREVIEW_ROWS]]
    return {"columns": list(table.columns), "rows": rows, "count": len(table.rows),
            "table": True}


def guess_text_column(columns: list[str]) -> str | None:
    if len(columns) == 1:
        return columns[0]
    return next((c for c in ("text", "review", "case", "body", "content") if c in columns),
                None)


class BatchImportDialog(QDialog):
    """Pick a file or folder, check the preview, score it with progress, time left and
    cancel. Non-modal: the window stays usable, and closing the dialog does not stop it."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.task: Task | None = None
        self.preview_task: Task | None = None
        self._idle = True
        self.counts: dict[str, int] = {}
        self.source_is_table = False  # a table needs its text column; a folder does not
        self.setWindowTitle("Import cases")
        self.setWindowIcon(icon("import"))
        self.setModal(False)
        self.resize(720, 520)
        self._landed = QTimer(self, singleShot=True, interval=LANDED_SIGNAL_MS)
        self._landed.timeout.connect(lambda: self.context.cases_changed.emit(None))
        self._build()
        self._show_model(context.workbench)
        context.workbench_changed.connect(self._show_model)

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Cases from:", self._source_row())
        self.text_column = QComboBox(objectName="batchTextColumn")
        self.text_column.setAccessibleName("Column with the case text")
        form.addRow("Text column:", self.text_column)
        self.encoding = QLineEdit(objectName="batchEncoding")
        self.encoding.setPlaceholderText("UTF-8 (name another encoding if the file is not)")
        self.encoding.editingFinished.connect(self._load_preview)
        form.addRow("Encoding:", self.encoding)
        self.explain = QCheckBox("Explain each case (word attributions, about a second each)")
        self.explain.setChecked(True)
        self.ask_llm = QCheckBox("Ask the LLM for a second opinion on escalated cases (slow)")
        form.addRow("", self.explain)
        form.addRow("", self.ask_llm)
        self.model_label = QLabel("")
        form.addRow("Model:", self.model_label)
        layout.addLayout(form)
        self.preview = QTableWidget(objectName="batchPreview")
        self.preview.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.preview.setAccessibleName("The first rows of the file")
        layout.addWidget(self.preview, 1)
        self.summary = QLabel("Choose a CSV, TSV or JSON-lines file, or a folder of .txt files.",
                              objectName="batchSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.progress = QProgressBar(objectName="batchProgress")
        self.progress.hide()
        layout.addWidget(self.progress)
        layout.addLayout(self._button_row())

    def _source_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.path = QLineEdit(objectName="batchPath")
        self.path.setAccessibleName("File or folder to import")
        self.path.editingFinished.connect(self._load_preview)
        self.file_button = QPushButton(icon("open"), "File…")
        self.file_button.clicked.connect(self._choose_file)
        self.folder_button = QPushButton(icon("open"), "Folder…")
        self.folder_button.clicked.connect(self._choose_folder)
        row.addWidget(self.path, 1)
        row.addWidget(self.file_button)
        row.addWidget(self.folder_button)
        return row

    def _button_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addStretch(1)
        self.start_button = QPushButton(icon("import"), "Score and store")
        self.start_button.setDefault(True)
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel import")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        for button in (self.start_button, self.cancel_button, self.close_button):
            row.addWidget(button)
        return row

    # -- choosing the source --------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Cases to import", "", "Tables (*.csv *.tsv *.txt *.jsonl *.json);;"
            "All files (*)")
        if path:
            self.set_source(Path(path))

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of .txt cases")
        if path:
            self.set_source(Path(path))

    def set_source(self, path: Path) -> Task:
        """Show ``path`` and load its preview in the background."""
        self.path.setText(str(path))
        return self._load_preview()

    def _load_preview(self) -> Task | None:
        text = self.path.text().strip()
        if not text:
            return None
        path, encoding = Path(text).expanduser(), self.encoding.text().strip() or None
        self.start_button.setEnabled(False)
        self.summary.setText("Reading the file…")
        self.preview_task = self.context.runner.run(
            "read import preview", lambda _ctx: read_preview(path, encoding), owner=self)
        self.preview_task.on_success(self._show_preview).on_failure(self.summary.setText).start()
        return self.preview_task

    def _show_preview(self, preview: dict) -> None:
        columns, rows = preview["columns"], preview["rows"]
        self.preview.setColumnCount(len(columns))
        self.preview.setHorizontalHeaderLabels(columns)
        self.preview.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                self.preview.setItem(r, c, QTableWidgetItem(" ".join(value.split())))
        self.text_column.clear()
        self.source_is_table = preview["table"]
        self.text_column.setEnabled(preview["table"])
        if preview["table"]:
            self.text_column.addItems(columns)
            guess = guess_text_column(columns)
            if guess:
                self.text_column.setCurrentText(guess)
        what = "rows" if preview["table"] else ".txt files"
        self.summary.setText(f"{preview['count']:,} {what}; the first {len(rows)} are shown. "
                             "Cases already in the history are skipped.")
        self.start_button.setEnabled(preview["count"] > 0 and not self.running)

    def _show_model(self, bench) -> None:
        self.model_label.setText(bench.model_id if bench else
                                 "no model is loaded: train or activate one first")

    # -- scoring ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        # Until its last callback ran here, not merely until the worker returned.
        return self.task is not None and not self._idle

    def start(self) -> Task | None:
        """Score the chosen cases on the compute pool; None when something is missing."""
        problem = self._missing()
        if problem:
            self.summary.setText(problem)
            return None
        work = self._work()
        self.task = self.context.runner.run("batch import", work, owner=self)
        self.task.on_progress(self._show_progress).on_partial(self._landed_one) \
            .on_success(self._done).on_cancelled(self._cancelled).on_failure(self._failed) \
            .on_finished(self._finished)
        self._idle = False
        self._set_running(True)
        return self.task.start()

    def _missing(self) -> str | None:
        if self.running:
            return "An import is already running."
        if self.context.workbench is None:
            return "No model is loaded: train or activate one before importing cases."
        if self.context.store is None:
            return "The case history is not open yet."
        if not self.path.text().strip():
            return "Choose a file or a folder first."
        return None

    def _work(self) -> Callable:
        from app.batch import read_cases
        from app.pipeline import ASK_ESCALATED, ASK_NEVER, Steps, run_batch

        path = Path(self.path.text().strip()).expanduser()
        column = self.text_column.currentText() if self.source_is_table else None
        encoding = self.encoding.text().strip() or None
        store = SerialisedStore(self.context.store, self.context.runner)
        bench, explain, ask = self.context.workbench, self.explain.isChecked(), \
            self.ask_llm.isChecked()
        llm = self.context.llm_choice() if ask else None
        steps = Steps(explain=explain, ask=ASK_ESCALATED if ask else ASK_NEVER)

        def work(ctx):
            cases = read_cases(path, column or None, encoding)
            return run_batch(bench, cases, store, steps=steps, llm=llm, progress=ctx.progress,
                             cancel=ctx.cancel,
                             on_stored=lambda _write, counts: ctx.partial(counts.to_dict()))

        return work

    def cancel(self) -> None:
        if self.running:
            self.task.cancel()
            self.summary.setText("Cancelling after the current case…")

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(True)
        if running:
            self.progress.setRange(0, 0)
            self.summary.setText("Loading the cases…")
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.path, self.file_button, self.folder_button, self.text_column,
                       self.encoding, self.explain, self.ask_llm):
            widget.setEnabled(not running)

    def _show_progress(self, progress) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        left = (f" — about {format_duration(progress.eta_seconds)} left"
                if progress.eta_seconds is not None else "")
        note = f" ({progress.message})" if progress.message else ""
        self.summary.setText(f"Scoring case {min(progress.done + 1, progress.total):,} of "
                             f"{progress.total:,}{left}{note}")

    def _landed_one(self, counts: dict) -> None:
        self.counts = counts
        if not self._landed.isActive():  # at most one refresh a second while cases land
            self._landed.start()

    def _done(self, counts) -> None:
        self.counts = counts.to_dict()
        failures = "".join(f"\n  {source}: {message}" for source, message in counts.failures[:10])
        self.summary.setText(
            f"Done: {counts.stored:,} stored, {counts.completed:,} finished "
            f"({counts.escalated:,} escalated), {counts.skipped:,} already in the history, "
            f"{counts.failed:,} failed.{failures}")
        self.context.message.emit("info", f"Imported {counts.stored} case(s) from "
                                          f"{Path(self.path.text()).name}.")

    def _cancelled(self) -> None:
        stored = self.counts.get("stored", 0)
        self.summary.setText(f"Cancelled: {stored:,} case(s) were stored and stay in the "
                             "history; importing the same file again resumes from there.")

    def _failed(self, message: str) -> None:
        self.summary.setText(f"The import stopped: {message}")

    def _finished(self) -> None:
        self._idle = True
        self._landed.stop()
        self.context.cases_changed.emit(None)
        self._set_running(False)
        self.text_column.setEnabled(self.source_is_table)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
