"""Models: the model manager (list, activate, train), the training progress window, and the
model card viewer.

Training is ``models.train_job.train_and_save``, the same run as ``python main.py train``, on
the compute pool with progress, time left and cancel (a cancelled run keeps nothing). Like the
command line, a new model's first policy and its activation go into the audit trail.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.ui.batch_import import read_preview
from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.tasks import SerialisedStore, Task, format_duration, if_alive
from models.model_card import escalation_sentences, read_model_card, training_sentence
from models.types import ModelCard

ESC = html.escape


# -- the model card ----------------------------------------------------------------------------

def find_plot(model_dir: Path, card: ModelCard) -> Path | None:
    """A risk-coverage PNG for this model: one kept in the model directory, else the newest
    that ``evaluate`` (or this window) drew into the data directory's reports."""
    model_dir = Path(model_dir)
    kept = sorted(model_dir.glob("*risk*coverage*.png")) if model_dir.is_dir() else []
    if kept:
        return kept[-1]
    model_id = card.model_id or model_dir.name
    reports = model_dir.parent.parent / "reports"
    drawn = sorted(reports.glob(f"{model_id}-*-risk-coverage.png"),
                   key=lambda p: p.stat().st_mtime) if reports.is_dir() else []
    return drawn[-1] if drawn else None


def draw_plot(bench, data_dir: Path) -> Path:
    """Draw the active policy's risk-coverage plot on the model's test split (what
    ``python main.py evaluate`` draws), into the data directory's reports."""
    from models.errors import DataError
    from models.escalation_evidence import evaluate_policy, risk_coverage_plot
    from models.train_job import read_held_out

    if bench.policy is None:
        raise DataError("This model has no escalation policy to plot.")
    texts, labels = read_held_out(bench.model_dir, "test")
    truth = [bench.labels.index(label) for label in labels]
    scores = bench.classifier.scores(texts)
    path = Path(data_dir) / "reports" / (f"{bench.model_id}-{bench.policy.policy_id}"
                                         "-risk-coverage.png")
    return risk_coverage_plot(bench.policy, scores, truth, path,
                              evaluate_policy(bench.policy, scores, truth))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{ESC(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{ESC(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table cellpadding='3'><tr>{head}</tr>{body}</table>"


def _number(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def card_sections(card: ModelCard) -> list[tuple[str, str]]:
    """The card as (title, HTML) sections, in the order a reviewer reads them. The nested
    evidence (data, metrics, training) is the JSON the training wrote, read as such."""
    sections = [("Intended use", f"<p>{ESC(card.intended_use or '—')}</p>"),
                ("Training data", _training_data(card)),
                ("Metrics per class (test split)", _metrics(card)),
                ("Calibration", _calibration(card)),
                ("Escalation evidence", _escalation(card)),
                ("Limitations", "<ul>" + "".join(f"<li>{ESC(x)}</li>" for x in
                                                 card.limitations) + "</ul>"),
                ("Training run", _training_run(card))]
    return sections


def _training_data(card: ModelCard) -> str:
    data = card.training_data
    rows = data.get("rows", {})
    counts = data.get("class_counts", {})
    table = _table(["split", "rows", *card.labels],
                   [[name, rows.get(name, ""), *[counts.get(name, {}).get(lb, 0)
                                                 for lb in card.labels]] for name in rows])
    files = "".join(f"<li>{ESC(str(f.get('source', f)))}</li>" for f in data.get("files", []))
    recipe = data.get("split_recipe", {})
    return (f"<p>{ESC(data.get('name', '—'))}; split {ESC(str(recipe.get('strategy', '—')))}, "
            f"seed {ESC(str(recipe.get('seed', '—')))}.</p>{table}<ul>{files}</ul>")


def _metrics(card: ModelCard) -> str:
    test, base = card.test_metrics, card.baseline_test
    rows = [[label, _number(m.get("precision")), _number(m.get("recall")), _number(m.get("f1")),
             _number(base.get("per_class", {}).get(label, {}).get("f1")), m.get("support", "")]
            for label, m in test.get("per_class", {}).items()]
    return (f"<p>Accuracy {_number(test.get('accuracy'))}, macro-F1 "
            f"{_number(test.get('macro_f1'))} on {test.get('n', '?')} test cases. "
            f"{ESC(card.comparison)}</p>"
            + _table(["class", "precision", "recall", "F1", "baseline F1", "support"], rows)
            + f"<p>Baseline: {ESC(card.baseline.get('description', '—'))}.</p>")


def _calibration(card: ModelCard) -> str:
    rows = [[name, _number(m.get("ece_before")), _number(m.get("ece_after")),
             _number(m.get("nll_before")), _number(m.get("nll_after"))]
            for name, m in card.metrics.items()]
    return (f"<p>Temperature scaling, T = {_number(card.temperature)} (fitted on the validation "
            "split). Expected calibration error (15 bins) and negative log-likelihood, before "
            "and after:</p>"
            + _table(["split", "ECE before", "ECE after", "NLL before", "NLL after"], rows))


def _escalation(card: ModelCard) -> str:
    evidence = card.escalation
    if not evidence:
        return "<p>No escalation evidence was recorded for this model.</p>"
    guarantee, summary = escalation_sentences(card)
    reasons = ", ".join(f"{k}: {v}" for k, v in evidence.get("escalation_reasons", {}).items())
    return (f"<p><i>{ESC(guarantee)}</i></p><p>{ESC(summary)}</p>"
            f"<p>Escalation reasons on the test split: {ESC(reasons or 'none')}.</p>")


def _training_run(card: ModelCard) -> str:
    training, base = card.training, card.base_model
    hashes = "".join(f"<li><code>{ESC(k)}</code>: <code>{ESC(v)}</code></li>"
                     for k, v in card.hashes.items())
    return (f"<p>Base model {ESC(base.get('name', '—'))} ({ESC(base.get('package', ''))}, "
            f"{ESC(base.get('license', ''))}). {ESC(training_sentence(training))}</p>"
            f"<p>SHA-256:</p><ul>{hashes}</ul>")


def no_card(model_id: str) -> ModelCard:
    """What the dialog shows for a model without a ``model_card.json``."""
    return ModelCard.unreadable(model_id, "the model has no model card file")


def _policies(policies: list[dict]) -> str:
    # A policy's history entry is the policy.json the fit wrote (models.escalation).
    rows = [[p.get("policy_id", ""), p.get("created", ""), p["settings"].get("alpha"),
             p["settings"].get("delta"), _number(p.get("threshold"), 2),
             p.get("n_calibration", ""), p.get("source", "")] for p in policies]
    return ("<p>Every policy fitted for this model (the newest is used):</p>"
            + _table(["policy", "fitted", "α", "δ", "threshold", "cases", "on"], rows))


class ModelCardDialog(QDialog):
    """The model card: intended use, training data, metrics per class, calibration, the
    escalation evidence with its risk-coverage plot, and limitations. Read-only."""

    def __init__(self, card: ModelCard, model_dir: Path, parent: QWidget | None = None, *,
                 policies: list[dict] | None = None) -> None:
        super().__init__(parent)
        self.card, self.model_dir = card, Path(model_dir)
        self.policies = policies or []
        self.comparisons: list = []  # app.learning.ComparisonRecord, from the history
        self.plot: Path | None = find_plot(self.model_dir, card)
        self.setWindowTitle(f"Model card: {card.model_id or self.model_dir.name}")
        self.setWindowIcon(icon("model"))
        self.setModal(False)
        self.resize(820, 760)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser(objectName="modelCardText")
        self.browser.setOpenExternalLinks(False)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.render()

    def set_plot(self, path: Path) -> None:
        self.plot = Path(path)
        self.render()

    def set_comparisons(self, comparisons: list) -> None:
        self.comparisons = list(comparisons)
        self.render()

    def render(self) -> None:
        card = self.card
        parts = [f"<h1>{ESC(card.model_id or self.model_dir.name)}</h1>"]
        if card.problem:
            parts.append(f"<p>This model card cannot be shown: {ESC(card.problem)}.</p>")
            self.browser.setHtml("".join(parts))
            return
        parts.append(f"<p>Created {ESC(card.created or '—')}. Labels: "
                     f"{ESC(', '.join(card.labels))}. Card integrity: "
                     f"{ESC(card.integrity or 'not checked')}.</p>")
        for title, body in card_sections(card):
            parts.append(f"<h2>{ESC(title)}</h2>{body}")
            if title == "Escalation evidence":
                parts.append(self._plot_html())
                if self.policies:
                    parts.append(_policies(self.policies))
        if self.comparisons:
            parts.append("<h2>Champion and challenger</h2><ul>" + "".join(
                f"<li>{ESC(c.line())}</li>" for c in self.comparisons) + "</ul>")
        self.browser.setHtml("".join(parts))

    def _plot_html(self) -> str:
        if self.plot is None or not self.plot.is_file():
            return "<p><i>No risk-coverage plot yet.</i></p>"
        return (f"<p><img src='{ESC(self.plot.as_uri())}' width='560'></p>"
                f"<p>Risk–coverage on the test split ({ESC(self.plot.name)}).</p>")


def show_model_card(context: AppContext, parent: QWidget | None = None
                    ) -> ModelCardDialog | None:
    """The active model's card; its risk-coverage plot is drawn in the background if none
    exists yet."""
    from models.escalation import policy_history

    bench = context.workbench
    if bench is None:
        context.message.emit("warning", "No model is loaded, so there is no model card to "
                                        "show. Train or activate a model first.")
        return None
    dialog = ModelCardDialog(bench.card or no_card(bench.model_id), bench.model_dir, parent,
                             policies=policy_history(bench.model_dir))
    dialog.show()
    read_comparisons(context, dialog, bench.model_id)
    if dialog.plot is None and bench.policy is not None:
        dialog.plot_task = context.runner.run(
            "draw risk-coverage plot", lambda _ctx: draw_plot(bench, context.data_dir)) \
            .on_success(if_alive(dialog, dialog.set_plot)).start()
    return dialog


def show_model_card_for(context: AppContext, model_id: str, parent: QWidget | None = None
                        ) -> Task:
    """Any registered model's card, read in the background."""
    from app.casework import model_registry
    from models.escalation import policy_history

    def read(_ctx) -> tuple[ModelCard, Path, list[dict]]:
        path = model_registry(context.data_dir).path_of(model_id)
        card = read_model_card(path, model_id) or no_card(model_id)
        return card, path, policy_history(path)

    def show(found) -> None:
        card, path, policies = found
        alive = parent is None or shiboken6.isValid(parent)
        dialog = ModelCardDialog(card, path, parent if alive else None, policies=policies)
        dialog.show()
        read_comparisons(context, dialog, model_id)

    return context.runner.run("read model card", read).on_success(show).start()


def read_comparisons(context: AppContext, dialog: ModelCardDialog, model_id: str) -> Task | None:
    """The history's champion/challenger comparisons of the model, into its card."""
    from app.learning import comparisons_of

    store = context.store
    if store is None:
        return None
    dialog.comparisons_task = context.runner.db(
        "read comparisons", lambda: comparisons_of(store, model_id)) \
        .on_success(if_alive(dialog, dialog.set_comparisons)).start()
    return dialog.comparisons_task


# -- training -----------------------------------------------------------------------------------

class TrainingDialog(QDialog):
    """The progress of one training run: stage, bar, time left, cancel. Non-modal."""

    trained = Signal(object)  # models.registry.ModelRecord

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task: Task | None = None
        self.record = None
        self.setWindowTitle(title)
        self.setWindowIcon(icon("train"))
        self.setModal(False)
        self.setMinimumWidth(460)
        layout = QVBoxLayout(self)
        # What an earlier step came to (the training, while its explainer is fitted after it).
        self.earlier = QLabel("", objectName="trainingEarlierStep")
        self.earlier.setWordWrap(True)
        self.earlier.hide()
        self.stage = QLabel("Starting…", objectName="trainingStage")
        self.stage.setWordWrap(True)
        self.bar = QProgressBar(objectName="trainingProgress")
        self.bar.setRange(0, 0)
        self.left = QLabel("", objectName="trainingTimeLeft")
        self.cancel_button = QPushButton(icon("cancel"), "Cancel training")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.close_button.hide()
        for widget in (self.earlier, self.stage, self.bar, self.left):
            layout.addWidget(widget)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.close_button)
        layout.addLayout(row)
        self.button_row = row

    def show_progress(self, progress) -> None:
        if progress.total <= 1:
            self.bar.setRange(0, 0)  # a stage without steps: busy
            self.left.setText("")
        else:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
            self.left.setText(f"about {format_duration(progress.eta_seconds)} left"
                              if progress.eta_seconds is not None else "")
        note = f" — {progress.message}" if progress.message else ""
        self.stage.setText(f"{progress.stage.capitalize()}{note}")

    def cancel(self) -> None:
        if self.task is not None and not self.task.done:
            self.task.cancel()
            self.stage.setText("Cancelling: nothing of this run will be kept…")
            self.cancel_button.setEnabled(False)

    def go_on(self, stage: str, cancel_label: str) -> None:
        """Keep what the finished step said, and show the next one's progress."""
        self.earlier.setText(self.stage.text())
        self.earlier.show()
        self.stage.setText(stage)
        self.bar.setRange(0, 0)
        self.cancel_button.setText(cancel_label)
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.close_button.hide()

    def finish(self, text: str) -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1)
        self.bar.setValue(1)
        self.left.setText("")
        self.cancel_button.hide()
        self.close_button.show()
        self.close_button.setDefault(True)


def start_training(context: AppContext, spec=None, parent: QWidget | None = None, *,
                   config=None, base_dir: Path | None = None, activate: bool = True,
                   fit_explainer: bool | None = None) -> TrainingDialog:
    """Train a model (``spec``: a ``models.train_job.DatasetSpec``; None = the default model
    on the demo data) in the background with a progress window; when it is done and active,
    the app loads it. Then, if ``fit_explainer`` (None: the user's setting), the same window
    fits the new model's amortized explainer on the texts it was trained on (cancellable
    on its own: the model is kept). Returns the window (its ``task`` and ``trained``
    signal; ``task`` becomes the explainer's when that starts)."""
    from app.casework import model_registry
    from models.train_job import DatasetSpec, train_and_save, training_texts

    spec = spec or DatasetSpec.demo()
    data_dir, settings = context.data_dir, context.settings
    dialog = TrainingDialog(f"Training on {spec.name}", parent)

    session = SerialisedStore(context.session, context.runner) \
        if activate and context.session is not None else None

    def work(ctx):
        if session is not None:  # before minutes of training, not after: who may activate
            session.require_admin_if_accounts("activate a model")
        # Through the application's registry: the new model is signed by this installation.
        record = train_and_save(spec, model_registry(data_dir), config, progress=ctx.progress,
                                cancel=ctx.cancel, activate=activate, base_dir=base_dir)
        refit_to_settings(data_dir, record, settings.alpha, settings.delta, ctx)
        return record

    explain_after = context.settings.explainer_after_training if fit_explainer is None \
        else fit_explainer

    def trained(record) -> None:
        _trained(context, dialog, record)
        if explain_after and shiboken6.isValid(dialog):  # a closed window: the Models window
            dialog.go_on("Fitting the instant explainer…", "Skip the explainer")
            _fit_explainer_in(dialog, context, record.id, lambda: training_texts(spec, config),
                              "Skipped: the model is kept; fit its explainer later in the "
                              "Models window.")

    return _run_in(dialog, context, "train model", work, trained, "Training failed")


NOTHING_SAVED = "Cancelled: nothing was saved."


def _run_in(dialog: TrainingDialog, context: AppContext, name: str, work, done,
            failed: str, cancelled: str = NOTHING_SAVED) -> TrainingDialog:
    """Run ``work`` in the background with ``dialog`` showing its progress and outcome."""
    dialog.task = context.runner.run(name, work)
    dialog.task.on_progress(if_alive(dialog, dialog.show_progress)).on_success(done) \
        .on_cancelled(if_alive(dialog, lambda: dialog.finish(cancelled))) \
        .on_failure(if_alive(dialog, lambda message: dialog.finish(f"{failed}: {message}")))
    dialog.show()
    # Started on the next turn of the event loop, so a caller can still connect to the task
    # it gets back (a signal emitted before its slot is connected would be lost).
    QTimer.singleShot(0, dialog.task.start)
    return dialog


def start_explainer_fit(context: AppContext, model_id: str,
                        parent: QWidget | None = None) -> TrainingDialog:
    """Fit the model's amortized explainer (on the calibration split kept with it) in the
    background with a progress window (cancellable: nothing is kept then); the app reloads
    the model to use it."""
    dialog = TrainingDialog(f"Instant explainer for {model_id}", parent)
    dialog.cancel_button.setText("Cancel")
    return _fit_explainer_in(dialog, context, model_id)


def _fit_explainer_in(dialog: TrainingDialog, context: AppContext, model_id: str,
                      texts=None, cancelled: str = NOTHING_SAVED) -> TrainingDialog:
    """The explainer's fit in ``dialog``; ``texts``: a function giving the texts (run in the
    background), None for the calibration split kept with the model."""
    from app.casework import model_registry
    from explainers.amortized_store import fit_and_save

    data_dir = context.data_dir

    def work(ctx):
        return fit_and_save(model_registry(data_dir), model_id,
                            None if texts is None else texts(), progress=ctx.progress,
                            cancel=ctx.cancel)

    def done(explainer) -> None:
        if context.workbench is not None and context.workbench.model_id == model_id:
            context.load_workbench(model_id)
        if shiboken6.isValid(dialog):
            dialog.finish(explainer.summary)

    return _run_in(dialog, context, "fit explainer", work, done,
                   "The explainer was not fitted", cancelled)


def refit_to_settings(data_dir: Path, record, alpha: float, delta: float, ctx) -> None:
    """Training fits the policy at the default α and δ; refit it at the user's if those
    differ, so a new model honours the settings from its first case."""
    from app.casework import load_workbench
    from app.policy_refit import refit_policy
    from models.escalation import EscalationSettings

    trained_with = EscalationSettings()  # what train_and_save fits
    if (trained_with.alpha, trained_with.delta) != (alpha, delta):
        # Not cancellable: the model is saved by now, and this takes seconds.
        refit_policy(load_workbench(data_dir, record.id), alpha, delta, ctx.progress)


def _trained(context: AppContext, dialog: TrainingDialog, record) -> None:
    log_new_model(context, record)
    if record.active:
        context.load_workbench(record.id)
    context.message.emit("info", f"Model {record.id} trained.")
    if not shiboken6.isValid(dialog):
        return  # the window was closed; the model is saved and in use all the same
    test = (f"accuracy {record.test_accuracy:.3f}, macro-F1 {record.test_macro_f1:.3f}"
            if record.test_accuracy is not None else "")
    dialog.finish(f"Model {record.id} is ready{' and active' if record.active else ''}. "
                  f"Test split: {test}.")
    dialog.record = record
    dialog.trained.emit(record)


def log_new_model(context: AppContext, record) -> Task | None:
    """File the new model's first policy and, if active, its activation in the audit trail
    (what ``python main.py train`` files)."""
    store = context.store
    if store is None:
        return None
    data_dir = context.data_dir

    def log() -> None:
        from app.casework import model_identity, model_registry
        from app.policy_refit import refit_details
        from models.escalation import policy_dirs

        path = Path(record.path)
        registry = model_registry(data_dir)
        for directory in policy_dirs(path):  # the first, and a refit to the user's α and δ
            policy = registry.policy(path, record.id, record.labels, directory)
            store.record_policy_refitted(record.id, policy.policy_id, refit_details(policy))
        if record.active:
            store.record_model_activated(record.id, *model_identity(path))

    return context.runner.db("log new model", log).start()


# -- the model manager -------------------------------------------------------------------------

COLUMNS = ("", "Model", "Created", "Trained on", "Labels", "Accuracy", "Macro-F1", "Note")


class TrainFromFileDialog(QDialog):
    """What to train on: a labelled CSV/TSV/JSONL file, its text and label columns, and an
    optional separate test file."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Train a model on a file")
        self.setWindowIcon(icon("train"))
        form = QFormLayout(self)
        self.path = QLineEdit(objectName="trainPath")
        browse = QPushButton(icon("open"), "Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("Labelled cases:", row)
        self.text_col = QComboBox(objectName="trainTextColumn")
        self.label_col = QComboBox(objectName="trainLabelColumn")
        for combo in (self.text_col, self.label_col):
            combo.setEditable(True)
        form.addRow("Text column:", self.text_col)
        form.addRow("Label column:", self.label_col)
        self.test_path = QLineEdit(objectName="trainTestPath")
        self.test_path.setPlaceholderText("optional: a separate test file (same columns)")
        form.addRow("Test file:", self.test_path)
        self.epochs = QSpinBox(objectName="trainEpochs")
        self.epochs.setRange(1, 50)
        self.epochs.setValue(6)
        form.addRow("At most epochs:", self.epochs)
        from models.recipes import RECIPE_CHOICES

        self.recipe = QComboBox(objectName="trainRecipe")
        for value, description in RECIPE_CHOICES:
            self.recipe.addItem(description, value)
        form.addRow("Recipe:", self.recipe)
        self.activate = QCheckBox("Make it the active model when it is done")
        self.activate.setChecked(True)
        form.addRow("", self.activate)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        form.addRow(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.path.editingFinished.connect(self.load_columns)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labelled cases", "",
                                              "Tables (*.csv *.tsv *.jsonl *.json *.txt)")
        if path:
            self.path.setText(path)
            self.load_columns()

    def load_columns(self) -> Task | None:
        path = Path(self.path.text().strip()).expanduser()
        if not path.is_file():
            return None
        task = self.context.runner.run("read training file", lambda _ctx: read_preview(path),
                                       owner=self)
        return task.on_success(self._set_columns).on_failure(self.note.setText).start()

    def _set_columns(self, preview: dict) -> None:
        columns = preview["columns"]
        for combo, guesses in ((self.text_col, ("text", "review", "note", "body")),
                               (self.label_col, ("label", "rating", "outcome", "class"))):
            combo.clear()
            combo.addItems(columns)
            guess = next((c for c in guesses if c in columns), None)
            if guess:
                combo.setCurrentText(guess)
        self.note.setText(f"{preview['count']:,} rows; columns: {', '.join(columns)}.")

    def spec(self):
        from models.train_job import DatasetSpec

        path = Path(self.path.text().strip()).expanduser()
        test = self.test_path.text().strip()
        return DatasetSpec(path.name, path, self.text_col.currentText(),
                           self.label_col.currentText(),
                           test_path=Path(test).expanduser() if test else None)

    def config(self):
        from models.training import TrainingConfig

        return TrainingConfig(max_epochs=self.epochs.value(),
                              min_epochs=min(TrainingConfig().min_epochs, self.epochs.value()),
                              recipe=self.recipe.currentData())


class ModelsDialog(QDialog):
    """List the trained models; activate one; read its card; train a new one."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.records: list = []
        self.last_task: Task | None = None
        self.training: TrainingDialog | None = None
        self.setWindowTitle("Models")
        self.setWindowIcon(icon("model"))
        self.setModal(False)
        self.resize(900, 380)
        self._build()
        self.refresh()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS), objectName="modelsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _index: self.show_card())
        layout.addWidget(self.table, 1)
        self.status = QLabel("", objectName="modelsStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addLayout(self._buttons())

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.activate_button = QPushButton(icon("accept"), "Activate", objectName="activateModel")
        self.activate_button.setToolTip("Make the selected model the one that decides "
                                        "(an admin's action once the history has users)")
        self.activate_button.clicked.connect(self.activate_selected)
        self.card_button = QPushButton(icon("model"), "Model card…")
        self.card_button.clicked.connect(self.show_card)
        self.train_file_button = QPushButton(icon("train"), "Train on a file…")
        self.train_file_button.clicked.connect(self.train_from_file)
        self.train_default_button = QPushButton(icon("train"), "Train the default model")
        self.train_default_button.setToolTip("Fine-tune the embedded encoder on the drug-review "
                                             "demo data (about 4–5 minutes on a laptop CPU)")
        self.train_default_button.clicked.connect(lambda: self.train(None))
        self.learn_button = QPushButton(icon("train"), "Train from reviewed cases…",
                                        objectName="trainFromHistory")
        self.learn_button.setToolTip("Train a new model on the labels reviewers signed, compare "
                                     "it with the active one on reviewed cases neither saw, "
                                     "then decide whether to put it to work")
        self.learn_button.clicked.connect(self.learn)
        self.explainer_button = QPushButton(icon("train"), "Fit instant explainer",
                                            objectName="fitExplainer")
        self.explainer_button.setToolTip(
            "Learn the selected model's word attributions from sampled Shapley values of its "
            "calibration texts, so the case view shows them at once (minutes, in the "
            "background; it is used only if it beats the partition explainer on held-out "
            "texts)")
        self.explainer_button.clicked.connect(self.fit_explainer)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        for button in (self.activate_button, self.card_button, self.train_file_button,
                       self.train_default_button, self.learn_button, self.explainer_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(close)
        self._selection_changed()
        return row

    # -- the list ---------------------------------------------------------------------------------
    def refresh(self) -> Task:
        from app.casework import model_registry

        data_dir = self.context.data_dir
        self.last_task = self.context.runner.run(
            "list models", lambda _ctx: model_registry(data_dir).records(), owner=self) \
            .on_success(self._show).start()
        return self.last_task

    def _show(self, records: list) -> None:
        self.records = list(reversed(records))  # newest first
        self.table.setRowCount(len(self.records))
        for row, record in enumerate(self.records):
            values = ["●" if record.active else "", record.id, record.created[:19],
                      record.training_data, ", ".join(record.labels),
                      _number(record.test_accuracy), _number(record.test_macro_f1),
                      record.problem or ("active" if record.active else "")]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setToolTip("the active model" if record.active else "")
                self.table.setItem(row, column, item)
        if not self.records:
            self.status.setText("No model yet. Train the default model (drug-review demo data) "
                                "or train one on your own labelled file.")
        self._selection_changed()

    def selected(self):
        rows = self.table.selectionModel().selectedRows()
        return self.records[rows[0].row()] if rows else None

    def select(self, model_id: str) -> None:
        for row, record in enumerate(self.records):
            if record.id == model_id:
                self.table.selectRow(row)

    def _selection_changed(self) -> None:
        record = self.selected() if hasattr(self, "table") else None
        usable = record is not None and record.problem is None
        self.activate_button.setEnabled(usable and not record.active)
        self.card_button.setEnabled(usable)
        if hasattr(self, "explainer_button"):
            self.explainer_button.setEnabled(usable)

    # -- actions ----------------------------------------------------------------------------------
    def activate_selected(self) -> Task | None:
        """Verify and activate the selected model, load it, and file the activation (an
        admin's, once the history has users)."""
        record = self.selected()
        if record is None:
            return None
        self.status.setText("Checking who may activate models…")
        # Once the history has users, only an admin may change the model every decision
        # comes from (before the first one there is nobody to ask).
        self.last_task = self.context.if_admin(
            "activate a model", lambda: self._activate(record.id),
            if_alive(self, self.status.setText), owner=self)
        return self.last_task

    def _activate(self, model_id: str) -> Task:
        store = self.context.store
        if store is None:
            return self._activate_recorded(model_id, None)
        # What the history recorded for this model id holds it to its weights (read on the
        # database worker, then the activation hashes and signs off it).
        self.last_task = self.context.runner.db(
            "recorded weights", lambda: store.recorded_weights(model_id)) \
            .on_success(lambda known: self._activate_recorded(model_id, known)) \
            .on_failure(if_alive(self, self.status.setText)).start()
        return self.last_task

    def _activate_recorded(self, model_id: str, known: str | None) -> Task:
        data_dir = self.context.data_dir

        def activate(_ctx):
            from app.casework import activate_model, model_identity

            # Checks the files against their manifest (and the history's record of the
            # weights), then signs it with this installation's key: the admin vouches for
            # the model from now on.
            return model_identity(activate_model(data_dir, model_id, [known] if known else []))

        self.status.setText(f"Activating {model_id}…")
        self.last_task = self.context.runner.run("activate model", activate) \
            .on_success(lambda identity: self._activated(model_id, identity)) \
            .on_failure(if_alive(self, self.status.setText)).start()
        return self.last_task

    def _activated(self, model_id: str, identity: tuple) -> None:
        self.context.load_workbench(model_id)
        store = self.context.store
        if store is not None:
            self.context.runner.db("log activation",
                                   lambda: store.record_model_activated(model_id, *identity)) \
                .start()
        if shiboken6.isValid(self):  # the activation stands even if the window was closed
            self.status.setText(f"{model_id} is now the active model.")
            self.refresh()

    def fit_explainer(self) -> TrainingDialog | None:
        record = self.selected()
        return None if record is None else start_explainer_fit(self.context, record.id, self)

    def show_card(self) -> Task | None:
        record = self.selected()
        return None if record is None else show_model_card_for(self.context, record.id, self)

    def train_from_file(self) -> None:
        chooser = TrainFromFileDialog(self.context, self)
        if chooser.exec() == QDialog.DialogCode.Accepted and chooser.path.text().strip():
            self.train(chooser.spec(), chooser.config(), chooser.activate.isChecked())

    def learn(self, config=None, base_dir=None):
        """Train from the reviewed cases (``app.ui.learning_dialog``) with the recipe the user
        picks (automatic by data size unless they choose); the list shows the new model when
        it is saved. None when the choice was cancelled."""
        from app.ui.learning_dialog import start_learning

        if config is None:
            config = self._learning_config()
            if config is None:
                return None
        self.training = start_learning(self.context, self, config=config, base_dir=base_dir)
        self.training.task.on_success(if_alive(self, lambda _result: self.refresh()))
        return self.training

    def _learning_config(self):
        from models.recipes import RECIPE_CHOICES
        from models.training import TrainingConfig

        descriptions = [description for _value, description in RECIPE_CHOICES]
        chosen, ok = QInputDialog.getItem(
            self, "Train from reviewed cases", "Recipe (the automatic one follows the number "
            "of reviewed cases a label):", descriptions, 0, False)
        if not ok:
            return None
        return TrainingConfig(recipe=RECIPE_CHOICES[descriptions.index(chosen)][0])

    def train(self, spec=None, config=None, activate: bool = True) -> TrainingDialog:
        self.training = start_training(self.context, spec, self, config=config,
                                       activate=activate)
        self.training.trained.connect(lambda _record: self.refresh())
        return self.training


def first_start_message() -> str:
    """What the window says when there is no model yet (with a button that calls
    ``start_training(context, None, window)``)."""
    return ("There is no model yet. Train the default model — the embedded MiniLM encoder "
            "fine-tuned on the drug-review demo data, about 4–5 minutes on a laptop CPU — or "
            "train one on your own labelled file from Models.")

