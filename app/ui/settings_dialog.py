"""The settings window: every field of ``app.settings.Settings``, saved through
``AppContext.update_settings``.

The remote server's API key is kept apart: it is written with ``save_api_key`` to a file only
this user can read, never into the settings, the database or the logs, and the field never
shows a saved key. Changing α or δ refits the escalation policy (``app.policy_refit``, what
``python main.py calibrate`` does) in the background and files it in the audit trail.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.settings import DEFAULTS, KEY_FILE, LLM_BACKENDS, MEANINGS, THEMES, Settings, save_api_key
from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.result_panel import TONES
from app.ui.tasks import Task, if_alive
from app.ui.theme import apply_theme

BACKEND_NAMES = {"embedded": "Embedded (SmolLM2-135M, on this machine)",
                 "local": "Local model (a folder or .gguf file)",
                 "openai": "OpenAI-compatible server (URL)"}
KEY_ENV = ("CASEWISE_LLM_API_KEY", "OPENAI_API_KEY")


def _buddy(text: str, widget: QWidget) -> QLabel:
    """A form label whose Alt+letter focuses ``widget`` (rows that hold a layout need it)."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def refit_in_background(context: AppContext, alpha: float, delta: float) -> Task | None:
    """Refit the active model's escalation policy at (α, δ) on the compute pool; then file
    it in the audit trail and put it to use. None when no model is loaded."""
    from app.policy_refit import refit_details, refit_policy

    bench = context.workbench
    if bench is None:
        return None

    def refitted(policy) -> None:
        store = context.store
        if store is not None:
            context.runner.db("log policy refit", lambda: store.record_policy_refitted(
                policy.model_id, policy.policy_id, refit_details(policy))).start()
        context.use_workbench(replace(bench, policy=policy))  # the classifier is unchanged
        context.message.emit("info", f"New escalation policy {policy.policy_id}: "
                                     f"{policy.guarantee}")

    return context.runner.run(
        "refit escalation policy",
        lambda ctx: refit_policy(bench, alpha, delta, ctx.progress, ctx.cancel)) \
        .on_success(refitted)


def policy_differs(context: AppContext, settings: Settings) -> bool:
    """Whether the loaded model's policy was fitted for other α and δ than ``settings``."""
    bench = context.workbench
    if bench is None:
        return False
    if bench.policy is None:
        return True
    fitted = bench.policy.settings
    return (round(fitted.alpha, 6), round(fitted.delta, 6)) != \
        (round(settings.alpha, 6), round(settings.delta, 6))


class SettingsDialog(QDialog):
    """Edit the settings; Save applies them (and refits the policy when α or δ changed)."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.refit_task: Task | None = None
        self.setWindowTitle("Settings")
        self.setWindowIcon(icon("settings"))
        self.setModal(False)
        self._build()
        self.load(context.settings)

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._review_tab(), "&Review")
        self.tabs.addTab(self._escalation_tab(), "&Escalation")
        self.tabs.addTab(self._llm_tab(), "&LLM")
        self.tabs.addTab(self._storage_tab(), "&Storage and look")
        layout.addWidget(self.tabs)
        self._password_changed = False  # a new database password reopens the history
        self.problems = QLabel("", objectName="settingsProblems")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(f"color: {TONES['danger']};")
        layout.addWidget(self.problems)
        self.progress = QProgressBar(objectName="settingsProgress")
        self.progress.hide()
        layout.addWidget(self.progress)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self._cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.load(replace(DEFAULTS, data_dir=self.data_dir.text().strip())))
        layout.addWidget(self.buttons)

    def _review_tab(self) -> QWidget:
        page, form = QWidget(), QFormLayout()
        page.setLayout(form)
        self.reviewer = QLineEdit(objectName="settingsReviewer")
        from app.settings import login_name

        self.reviewer.setPlaceholderText(f"{login_name()} (your login name)")
        self.reviewer.setToolTip("Reviews are signed by the user signed in (Account menu). "
                                 "This name is written on the other audit events while "
                                 "nobody is signed in.")
        form.addRow("Audit &name when not signed in:", self.reviewer)
        self.meaning = QComboBox(objectName="settingsMeaning")
        for meaning in MEANINGS:
            self.meaning.addItem(meaning, meaning)
        form.addRow("My signature &means:", self.meaning)
        self.idle = QSpinBox(objectName="settingsSigningIdle")
        self.idle.setRange(1, 480)
        self.idle.setSuffix(" min")
        self.idle.setToolTip("After this long without a signing, the next one asks for the "
                             "login id as well as the password (21 CFR 11.200(a)). An admin's "
                             "setting once the history has users.")
        form.addRow("Ask the login id again after &idle:", self.idle)
        self.blind = QCheckBox("&Blind review: hide the model's answer until I record a first "
                               "judgement", objectName="settingsBlind")
        self.queue = QCheckBox("After a review, &open the next unreviewed case",
                               objectName="settingsQueue")
        self.explainer_after = QCheckBox(
            "After training a model, fit its &instant explainer in the background",
            objectName="settingsExplainerAfterTraining")
        self.explainer_after.setToolTip(
            "Minutes of work after training: sampled Shapley values of the training texts and "
            "a small head that gives each case's word attributions at once, refined while you "
            "read. Cancellable; the Models window can fit it later.")
        form.addRow(self.blind)
        form.addRow(self.queue)
        form.addRow(self.explainer_after)
        return page

    def _escalation_tab(self) -> QWidget:
        page, form = QWidget(), QFormLayout()
        page.setLayout(form)
        self.alpha = self._probability("settingsAlpha")
        self.delta = self._probability("settingsDelta")
        form.addRow("α, tolerated error among &automatic decisions:", self.alpha)
        form.addRow("δ, allowed chance the &guarantee fails:", self.delta)
        self.audit = QDoubleSpinBox(objectName="settingsAuditShare")
        self.audit.setRange(0.0, 50.0)
        self.audit.setDecimals(1)
        self.audit.setSingleStep(1.0)
        self.audit.setSuffix(" %")
        self.audit.setToolTip("This share of the automatic decisions, drawn at random, joins "
                              "the review queue, reviewed blind: the guarantee monitor reads "
                              "their reviews (0 % turns the audit off).")
        form.addRow("A&udit sample of automatic decisions:", self.audit)
        note = QLabel("Changing α or δ refits the escalation policy on the model's calibration "
                      "split (a few seconds) and records it in the audit trail. A smaller α "
                      "decides fewer cases automatically.")
        note.setWordWrap(True)
        form.addRow(note)
        return page

    @staticmethod
    def _probability(name: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox(objectName=name)
        box.setRange(0.001, 0.5)
        box.setDecimals(3)
        box.setSingleStep(0.01)
        return box

    def _llm_tab(self) -> QWidget:
        page, form = QWidget(), QFormLayout()
        page.setLayout(form)
        self.backend = QComboBox(objectName="settingsBackend")
        for name in LLM_BACKENDS:
            self.backend.addItem(BACKEND_NAMES.get(name, name), name)
        self.backend.currentIndexChanged.connect(self._backend_changed)
        form.addRow("&Backend:", self.backend)
        self.llm_model = QLineEdit(objectName="settingsLlmModel")
        browse = QPushButton(icon("open"), "Browse…")
        browse.clicked.connect(self._browse_model)
        self.browse_model = browse
        row = QHBoxLayout()
        row.addWidget(self.llm_model, 1)
        row.addWidget(browse)
        form.addRow(_buddy("&Model:", self.llm_model), row)
        self.base_url = QLineEdit(objectName="settingsBaseUrl")
        self.base_url.setPlaceholderText("http://localhost:11434/v1")
        form.addRow("Server &URL:", self.base_url)
        self.api_key = QLineEdit(objectName="settingsApiKey")
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText(self._key_placeholder())
        form.addRow("API &key:", self.api_key)
        self.remove_key = QCheckBox("Remove the saved key", objectName="settingsRemoveKey")
        form.addRow("", self.remove_key)
        self.allow_remote = QCheckBox("Allow sending de-identified cases to a server that is "
                                      "not on this machine", objectName="settingsAllowRemote")
        self.allow_remote.setIcon(icon("remote-warning"))
        form.addRow(self.allow_remote)
        self.open_llm = QCheckBox("Open the LLM pane when a case is escalated",
                                  objectName="settingsOpenLlm")
        form.addRow(self.open_llm)
        return page

    def _storage_tab(self) -> QWidget:
        page, form = QWidget(), QFormLayout()
        page.setLayout(form)
        self.data_dir = QLineEdit(objectName="settingsDataDir")
        from app.paths import data_dir

        self.data_dir.setPlaceholderText(f"{data_dir()} (the default)")
        browse = QPushButton(icon("open"), "Browse…")
        browse.clicked.connect(self._browse_data_dir)
        row = QHBoxLayout()
        row.addWidget(self.data_dir, 1)
        row.addWidget(browse)
        form.addRow(_buddy("&Data directory:", self.data_dir), row)
        form.addRow(QLabel("Models, the case history and exports live here. Changing it opens "
                           "the history and the active model found there."))
        self.database_url = QLineEdit(objectName="settingsDatabaseUrl")
        self.database_url.setPlaceholderText("none: casewise.db in the data directory")
        self.database_url.setToolTip(
            "A team's shared history on PostgreSQL, for example "
            "postgresql+psycopg://ann@db.example.org:5432/casewise?sslmode=verify-full "
            "(TLS parameters go in the URL). No password here: it goes in the field below.")
        form.addRow(_buddy("Team &database URL:", self.database_url), self.database_url)
        self.database_password = QLineEdit(objectName="settingsDatabasePassword")
        self.database_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.database_password.setPlaceholderText(
            "kept in a private file, never in the settings")
        form.addRow(_buddy("Database pass&word:", self.database_password),
                    self.database_password)
        self.theme = QComboBox(objectName="settingsTheme")
        for theme in THEMES:
            self.theme.addItem({"system": "Follow the system"}.get(theme, theme.capitalize()),
                               theme)
        form.addRow("&Theme:", self.theme)
        return page

    # -- the form and the settings ------------------------------------------------------------
    def load(self, settings: Settings) -> None:
        """Show ``settings`` in the form."""
        self.reviewer.setText(settings.reviewer)
        self.meaning.setCurrentIndex(max(0, self.meaning.findData(settings.signature_meaning)))
        self.idle.setValue(settings.signing_idle_minutes)
        self.blind.setChecked(settings.blind_review)
        self.queue.setChecked(settings.review_queue)
        self.explainer_after.setChecked(settings.explainer_after_training)
        self.alpha.setValue(settings.alpha)
        self.delta.setValue(settings.delta)
        self.audit.setValue(settings.audit_share * 100)
        self.backend.setCurrentIndex(max(0, self.backend.findData(settings.llm_backend)))
        self.llm_model.setText(settings.llm_model)
        self.base_url.setText(settings.llm_base_url)
        self.allow_remote.setChecked(settings.allow_remote)
        self.open_llm.setChecked(settings.open_llm_on_escalation)
        self.data_dir.setText(settings.data_dir)
        self.database_url.setText(settings.database_url)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self._backend_changed()

    def form_settings(self) -> Settings:
        """The settings as the form has them (not yet checked or saved)."""
        return replace(
            self.context.settings, reviewer=self.reviewer.text().strip(),
            signature_meaning=self.meaning.currentData(), blind_review=self.blind.isChecked(),
            signing_idle_minutes=self.idle.value(),
            review_queue=self.queue.isChecked(),
            explainer_after_training=self.explainer_after.isChecked(),
            alpha=round(self.alpha.value(), 6),
            delta=round(self.delta.value(), 6), audit_share=round(self.audit.value() / 100, 4),
            llm_backend=self.backend.currentData(),
            llm_model=self.llm_model.text().strip(), llm_base_url=self.base_url.text().strip(),
            allow_remote=self.allow_remote.isChecked(),
            open_llm_on_escalation=self.open_llm.isChecked(),
            data_dir=self.data_dir.text().strip(), database_url=self.database_url.text().strip(),
            theme=self.theme.currentData())

    def _backend_changed(self) -> None:
        backend = self.backend.currentData()
        for widget in (self.llm_model, self.browse_model):
            widget.setEnabled(backend in ("local", "openai"))
        self.browse_model.setEnabled(backend == "local")
        self.llm_model.setPlaceholderText(
            {"local": "a model folder or a .gguf file", "openai": "the server's model name, "
             "for example llama3.2"}.get(backend, "the embedded model"))
        for widget in (self.base_url, self.api_key, self.remove_key, self.allow_remote):
            widget.setEnabled(backend == "openai")

    def _key_placeholder(self) -> str:
        named = next((name for name in KEY_ENV if os.environ.get(name)), None)
        if named:
            return f"set by the environment ({named}); that one is used"
        if self._key_file().exists():
            return "a key is saved (type a new one to replace it)"
        return "none (optional; kept in a private file, never in the settings)"

    def _key_file(self) -> Path:
        from app.paths import config_dir

        return Path(self.context.config_dir or config_dir()) / KEY_FILE

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A local LLM (.gguf), or cancel to choose "
                                              "a folder", "", "GGUF models (*.gguf)")
        if not path:
            path = QFileDialog.getExistingDirectory(self, "A local LLM folder")
        if path:
            self.llm_model.setText(path)

    def _browse_data_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data directory",
                                                str(self.context.data_dir))
        if path:
            self.data_dir.setText(path)

    # -- saving ----------------------------------------------------------------------------------
    def save(self) -> Task | None:
        """Check and save; apply the theme, audit name and data directory; refit the policy
        if α or δ changed (the window stays open with its progress until the refit is done).
        Changing α, δ or the signing idle limit is an admin's once the history has users:
        that is checked first.
        Returns the task that goes on (the check, or the refit), if any."""
        new = self.form_settings()
        problems = new.problems()
        if problems:
            self.problems.setText(" ".join(problems))
            return None
        old = self.context.settings
        if (new.alpha, new.delta, new.signing_idle_minutes) != \
                (old.alpha, old.delta, old.signing_idle_minutes):
            self.problems.setText("Checking who may change α, δ and the signing idle limit…")
            return self.context.if_admin(
                "change α, δ (the escalation policy) or the signing idle limit",
                lambda: self._save(new),
                lambda why: self.problems.setText(f"The settings were not saved: {why}"),
                owner=self)
        return self._save(new)

    def _save(self, new: Settings) -> Task | None:
        old = self.context.settings
        try:
            self._save_key()
            self._save_database_password(new)
            self.context.update_settings(new)
        except (OSError, ValueError) as exc:
            self.problems.setText(f"The settings were not saved: {exc}")
            return None
        self.problems.setText("")
        self._apply(old, new)
        if new.data_dir == old.data_dir and policy_differs(self.context, new):
            return self._refit(new)
        self.accept()
        return None

    def _save_key(self) -> None:
        key = self.api_key.text().strip()
        if key or self.remove_key.isChecked():
            save_api_key("" if self.remove_key.isChecked() and not key else key,
                         self.context.config_dir)
        self.api_key.clear()
        self.remove_key.setChecked(False)
        self.api_key.setPlaceholderText(self._key_placeholder())

    def _save_database_password(self, new: Settings) -> None:
        """A typed password goes to the key store, for the URL's user and database."""
        password = self.database_password.text()
        self.database_password.clear()
        if password and new.database_url:
            from app.store_location import parse_url, save_database_password

            save_database_password(parse_url(new.database_url), password,
                                   self.context.config_dir)
            self._password_changed = True

    def _apply(self, old: Settings, new: Settings) -> None:
        app = QApplication.instance()
        if new.theme != old.theme and app is not None:
            apply_theme(app, new.theme)
        store = self.context.store
        if store is not None and new.reviewer != old.reviewer:
            name = self.context.actor_name()  # the signed-in user's, while there is one
            self.context.runner.db("set audit name", lambda: setattr(store, "actor", name)) \
                .start()
        if new.data_dir != old.data_dir:
            self._switch_data_dir(store)
        elif new.database_url != old.database_url or self._password_changed:
            self._password_changed = False
            self.context.open_store()
            if store is not None:  # after the queued work of the old one, on the same worker
                self.context.runner.db("close old case history", store.close).start()

    def _switch_data_dir(self, old_store) -> None:
        self.context.open_store()
        self.context.load_workbench()
        if old_store is not None:  # after the queued work of the old one, on the same worker
            self.context.runner.db("close old case history", old_store.close).start()

    def _refit(self, settings: Settings) -> Task | None:
        task = refit_in_background(self.context, settings.alpha, settings.delta)
        if task is None:
            self.accept()
            return None
        self.refit_task = task
        self.progress.setRange(0, 0)
        self.progress.show()
        self.problems.setText("Refitting the escalation policy…")
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)
        task.on_progress(if_alive(self, self._refit_progress)) \
            .on_success(if_alive(self, lambda _policy: self.accept())) \
            .on_failure(if_alive(self, self._refit_failed)) \
            .on_cancelled(if_alive(self, self._refit_cancelled))
        return task.start()

    def _refit_progress(self, progress) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)

    def _refit_failed(self, message: str) -> None:
        self._refit_ended(f"The settings are saved, but the policy was not refitted: {message}")

    def _refit_cancelled(self) -> None:
        self._refit_ended("Refit cancelled: the settings are saved; the model keeps its "
                          "previous policy until you save again.")

    def _refit_ended(self, text: str) -> None:
        self.progress.hide()
        self.problems.setText(text)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)

    def _cancel(self) -> None:
        if self.refit_task is not None and not self.refit_task.done:
            self.refit_task.cancel()
            return
        self.reject()
