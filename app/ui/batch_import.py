"""Batch import: score a CSV/TSV/JSONL file or a folder of .txt files in the background.

The scoring is ``app.pipeline.run_batch``, the same function ``python main.py score`` runs; it
runs on the compute pool, and every call it makes to the case history goes through
``SerialisedStore`` to the one database worker, so the history list keeps paging while cases
land. Re-importing a file finishes the cases a cancel left without all their records and
skips whole ones, so a cancelled import resumes. The text column is guessed by measuring the
columns (``models.data.guess_text_column``); the others are kept as each case's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.pipeline import BatchStatus
from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.tasks import SerialisedStore, Task, format_duration

PREVIEW_ROWS = 5
PREVIEW_CHARS = 200
LANDED_SIGNAL_MS = 1000  # how often the history hears "cases changed" during an import


@dataclass(frozen=True)
class ImportPreview:
    """What the dialog shows before scoring: the columns and first rows of a table (or the
    first files of a folder), how many there are, and the column that looks like the text."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    count: int
    table: bool  # a table needs its text column; a folder does not
    text_column: str | None = None

    def column_values(self, column: str) -> list[str]:
        if column not in self.columns:
            return []
        index = self.columns.index(column)
        return [row[index] for row in self.rows]


def read_import_preview(path: Path, encoding: str | None = None) -> ImportPreview:
    """The preview of ``path`` (runs on the compute pool: files can be large)."""
    from models.data import guess_text_column, read_table

    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        rows = tuple((f.name, f.read_text(encoding=encoding or "utf-8", errors="replace")
                      [:PREVIEW_CHARS]) for f in files[:PREVIEW_ROWS])
        return ImportPreview(("file", "text"), rows, len(files), False)
    table = read_table(path, encoding)
    rows = tuple(tuple(str(row.get(c, ""))[:PREVIEW_CHARS] for c in table.columns)
                 for row in table.rows[:PREVIEW_ROWS])
    return ImportPreview(table.columns, rows, len(table.rows), True,
                         guess_text_column(list(table.columns), list(table.rows)))


def read_preview(path: Path, encoding: str | None = None) -> dict:
    """``read_import_preview`` as the training dialog reads it (columns, rows, count)."""
    preview = read_import_preview(path, encoding)
    return {"columns": list(preview.columns), "rows": [list(r) for r in preview.rows],
            "count": preview.count, "table": preview.table}


@dataclass
class StoppedRun:
    """Where a cancelled run left the file's cases, read from the history by the worker
    before it reports the cancel (so the dialog reads it only after: the signal orders it)."""

    status: BatchStatus | None = None


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
        self.stopped = StoppedRun()
        self.shown: ImportPreview | None = None
        self._previewed: tuple[Path, str | None] | None = None  # the file the preview shows
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
        self.text_column.currentTextChanged.connect(self._text_column_changed)
        form.addRow("Text column:", self.text_column)
        self.metadata_columns = QListWidget(objectName="batchMetadataColumns")
        self.metadata_columns.setAccessibleName("Columns kept with each case")
        self.metadata_columns.setToolTip("Ticked columns are stored with each case and shown "
                                         "with it; an id column also joins its source.")
        self.metadata_columns.setMaximumHeight(90)
        form.addRow("Keep with each case:", self.metadata_columns)
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
        self.text_label = QLabel("", objectName="batchTextLabel")
        layout.addWidget(self.text_label)
        self.text_preview = QPlainTextEdit(objectName="batchTextPreview", readOnly=True)
        self.text_preview.setAccessibleName("The case texts of the first rows")
        self.text_preview.setPlaceholderText("The text of the first cases shows here.")
        self.text_preview.setMaximumHeight(110)
        layout.addWidget(self.text_preview)
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
        return self._load_preview(again=True)

    def _load_preview(self, again: bool = False) -> Task | None:
        """Read the preview of the file named, unless it is the one shown: the fields also
        report "editing finished" when they merely lose focus (as when a run disables them),
        and reading it again would undo the user's choice of columns."""
        text = self.path.text().strip()
        if not text:
            return None
        path, encoding = Path(text).expanduser(), self.encoding.text().strip() or None
        if (path, encoding) == self._previewed and not again:
            return None
        self._previewed = (path, encoding)
        self.start_button.setEnabled(False)
        self.summary.setText("Reading the file…")
        self.preview_task = self.context.runner.run(
            "read import preview", lambda _ctx: read_import_preview(path, encoding), owner=self)
        self.preview_task.on_success(self._show_preview).on_failure(self._preview_failed).start()
        return self.preview_task

    def _preview_failed(self, message: str) -> None:
        self._previewed = None  # the user may fix the file and name it again
        self.summary.setText(message)

    def _show_preview(self, preview: ImportPreview) -> None:
        self.shown = preview
        self.preview.setColumnCount(len(preview.columns))
        self.preview.setRowCount(len(preview.rows))
        for r, values in enumerate(preview.rows):
            for c, value in enumerate(values):
                self.preview.setItem(r, c, QTableWidgetItem(" ".join(value.split())))
        self.source_is_table = preview.table
        self.metadata_columns.clear()
        self.metadata_columns.setEnabled(preview.table)
        self.text_column.blockSignals(True)  # one refresh below, for the guessed column
        self.text_column.clear()
        self.text_column.setEnabled(preview.table)
        if preview.table:
            self.text_column.addItems(list(preview.columns))
            self.text_column.setCurrentText(preview.text_column or "")
        self.text_column.blockSignals(False)
        self._text_column_changed()
        what = "rows" if preview.table else ".txt files"
        unsure = (" No column reads like prose: choose the text column."
                  if preview.table and preview.text_column is None else "")
        self.summary.setText(f"{preview.count:,} {what}; the first {len(preview.rows)} are "
                             f"shown. Cases already in the history are finished or skipped."
                             f"{unsure}")
        self.start_button.setEnabled(preview.count > 0 and not self.running)

    def _text_column(self) -> str:
        """The column the texts come from ("text" for a folder: each file is one)."""
        return self.text_column.currentText() if self.source_is_table else "text"

    def _text_column_changed(self, _name: str = "") -> None:
        """Mark the text column in the table, show its first texts in full width, and offer
        every other column to keep (a changed text column was a kept one, or is again)."""
        if self.shown is None:
            return
        column = self._text_column()
        self.preview.setHorizontalHeaderLabels(list(self.shown.columns))
        for index, name in enumerate(self.shown.columns):
            header = self.preview.horizontalHeaderItem(index)
            font = header.font()
            font.setBold(name == column)  # the names stay as in the file, to be recognised
            header.setFont(font)
            header.setToolTip("The case text" if name == column else "")
        self.text_label.setText(f"Case text, from the column “{column}”:"
                                if self.shown.table else "Case text, one file a case:")
        self.text_preview.setPlainText("\n\n".join(
            f"{r}. {' '.join(text.split())}"
            for r, text in enumerate(self.shown.column_values(column), start=1)))
        if self.shown.table:
            self._offer_metadata([c for c in self.shown.columns if c != column])

    def _offer_metadata(self, columns: list[str]) -> None:
        # Every other column is kept unless unticked: what the file says about a case (its
        # id above all) is how its owner finds it again, and a column we failed to recognise
        # would otherwise be lost silently, as the id once was.
        unticked = {item.text() for item in self._metadata_items()
                    if item.checkState() != Qt.CheckState.Checked}
        self.metadata_columns.clear()
        for name in columns:
            item = QListWidgetItem(name, self.metadata_columns)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if name in unticked
                               else Qt.CheckState.Checked)

    def _metadata_items(self) -> list[QListWidgetItem]:
        return [self.metadata_columns.item(i) for i in range(self.metadata_columns.count())]

    def kept_columns(self) -> list[str]:
        """The columns stored as each case's metadata."""
        return [item.text() for item in self._metadata_items()
                if item.checkState() == Qt.CheckState.Checked]

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
        from app.pipeline import ASK_ESCALATED, ASK_NEVER, Steps, batch_status, run_batch

        path = Path(self.path.text().strip()).expanduser()
        column = self.text_column.currentText() if self.source_is_table else None
        keep = self.kept_columns()
        encoding = self.encoding.text().strip() or None
        store = SerialisedStore(self.context.store, self.context.runner)
        bench, explain, ask = self.context.workbench, self.explain.isChecked(), \
            self.ask_llm.isChecked()
        llm = self.context.llm_choice() if ask else None
        steps = Steps(explain=explain, ask=ASK_ESCALATED if ask else ASK_NEVER,
                      audit_share=self.context.settings.audit_share)
        stopped = self.stopped = StoppedRun()

        def work(ctx):
            cases = read_cases(path, column or None, encoding, keep)
            try:
                return run_batch(bench, cases, store, steps=steps, llm=llm,
                                 progress=ctx.progress, cancel=ctx.cancel,
                                 on_stored=lambda _write, counts: ctx.partial(counts.to_dict()))
            finally:
                if ctx.cancel.is_set():  # the run's own counts lag behind what is stored
                    stopped.status = batch_status(cases, store, steps=steps, llm=llm)

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
                       self.metadata_columns, self.encoding, self.explain, self.ask_llm):
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
        self.progress.setRange(0, 1)
        self.progress.setValue(1)  # full only when the whole file went through
        failures = "".join(f"\n  {source}: {message}" for source, message in counts.failures[:10])
        self.summary.setText(
            f"Done: {counts.stored:,} stored, {counts.completed:,} finished "
            f"({counts.escalated:,} escalated), {counts.skipped:,} already in the history, "
            f"{counts.failed:,} failed.{failures}")
        self.context.message.emit("info", f"Imported {counts.stored} case(s) from "
                                          f"{Path(self.path.text()).name}.")

    def _cancelled(self) -> None:
        status = self.stopped.status
        if status is None:  # cancelled before the cases were read: nothing was stored
            self.summary.setText("Cancelled before any case was scored.")
            return
        unfinished = (f", {status.unfinished:,} of them still without all their records"
                      if status.unfinished else "")
        self.summary.setText(
            f"Cancelled: {status.stored:,} of the file's {status.cases:,} cases are in the "
            f"history{unfinished}. They stay there; importing the same file again finishes "
            "them and scores the rest.")

    def _failed(self, message: str) -> None:
        self.summary.setText(f"The import stopped: {message}")

    def _finished(self) -> None:
        self._idle = True
        self._landed.stop()
        self.context.cases_changed.emit(None)
        self._set_running(False)
        self.text_column.setEnabled(self.source_is_table)
        self.metadata_columns.setEnabled(self.source_is_table)
        if self.progress.maximum() == 0:  # stopped before the first case: not busy any more
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        # Otherwise the bar stays where the run stopped: a cancel is not 100 %.
