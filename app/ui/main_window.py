"""The main window: the case view, the LLM pane as a dock, the history as a tab, menus and a
toolbar with a shortcut for every action, a status bar (model, who is signed in, remote
backend, background tasks) and a non-modal message bar for errors. Window geometry and
splitter positions are kept in ``window.ini`` in the config directory.

Parts built elsewhere (history, settings, model manager, batch import, about) are imported
lazily: a missing one shows a placeholder instead of stopping the window.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.account_status import AccountStatus
from app.ui.case_view import CaseView, remote_settings
from app.ui.context import AppContext
from app.ui.desktop import open_file
from app.ui.llm_pane import LLMPane
from app.ui.result_panel import TONES, make_badge, muted
from app.ui.sign_in_dialog import open_sign_in
from app.ui.tasks import Task

log = logging.getLogger("casewise.ui")
WINDOW_FILE = "window.ini"
INFO_SECONDS = 8  # info messages go away by themselves; warnings and errors stay
MESSAGE_WIDTH = 900  # px: the floating message bar's widest
LEVEL_TONES = {"info": "info", "warning": "escalate", "error": "danger"}


def optional(module: str, name: str):
    """``module.name`` when that part of the app is built, else None."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def icon_for(name: str) -> QIcon:
    make = optional("app.ui.icons", "icon")
    try:
        return make(name) if make else QIcon()
    except KeyError:
        return QIcon()


class MessageBar(QFrame):
    """A calm, non-modal strip above the tabs: the latest message, an optional action, close.

    Errors stay until closed; an info message does not cover an error that is showing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.level = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.text = QLabel()
        self.text.setObjectName("messageText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.text, 1)
        self.action_button = QPushButton()
        self.action_button.hide()
        layout.addWidget(self.action_button)
        self.second_button = QPushButton()  # a second way out (say "Use the local history")
        self.second_button.setObjectName("messageSecondAction")
        self.second_button.hide()
        layout.addWidget(self.second_button)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismiss)
        layout.addWidget(close)
        self._timer = QTimer(self, singleShot=True, timeout=self.dismiss)
        self._action = None
        self._second = None
        self.hide()

    shown = Signal()

    def show_message(self, level: str, text: str, action: tuple | None = None) -> None:
        if level == "info" and self.level == "error" and self.isVisible():
            return
        self.level = level
        tone = TONES[LEVEL_TONES.get(level, "info")]
        # By this bar's own name: the model banner is a MessageBar named "modelBanner".
        self.setStyleSheet(f"QFrame#{self.objectName()} {{ border: 1px solid {tone}; "
                           f"border-left: 5px solid {tone}; border-radius: 4px; }}")
        self.text.setText(text)
        self._set_action(action)
        self.show()
        self._timer.stop()
        if level == "info" and action is None:
            self._timer.start(INFO_SECONDS * 1000)
        self.shown.emit()
        self.raise_()

    def _set_action(self, action: tuple | list | None) -> None:
        """One action as ``(label, callback)``, or two as a list of such pairs."""
        pairs = action if isinstance(action, list) else [] if action is None else [action]
        for button, name in ((self.action_button, "_action"), (self.second_button, "_second")):
            if getattr(self, name) is not None:
                button.clicked.disconnect(getattr(self, name))
            setattr(self, name, None)
            button.hide()
        for (label, callback), button, name in zip(
                pairs, (self.action_button, self.second_button), ("_action", "_second"),
                strict=False):
            button.setText(label)
            setattr(self, name, callback)
            button.clicked.connect(callback)
            button.show()

    def dismiss(self) -> None:
        self.level = ""
        self.hide()


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, remember_layout: bool = True) -> None:
        super().__init__()
        self.context = context
        self.remember_layout = remember_layout
        self.setObjectName("mainWindow")
        self.setWindowTitle("Casewise")
        self.setWindowIcon(icon_for("casewise"))
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.training: Task | None = None
        self.last_export: Task | None = None
        self._build_dock()
        self._build_central()
        self._build_status_bar()
        self._build_actions()
        self._build_account_status()
        self._build_menus()
        self._build_toolbar()
        self._connect()
        self.resize(1360, 860)
        self.restore_layout()

    # -- building -------------------------------------------------------------------------------
    def _build_dock(self) -> None:
        self.llm_pane = LLMPane()
        self.llm_dock = QDockWidget("Second opinion", self)
        self.llm_dock.setObjectName("llmDock")
        self.llm_dock.setWidget(self.llm_pane)
        self.llm_dock.setMinimumWidth(320)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.llm_dock)
        self.llm_dock.hide()

    def _build_central(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.setSpacing(6)
        # Messages float over the bottom of the window, outside the layout: showing or
        # closing one never moves what is under the pointer.
        self.message_bar = MessageBar(central)
        self.message_bar.setAutoFillBackground(True)
        self.message_bar.shown.connect(self._place_message_bar)
        central.installEventFilter(self)
        self.model_banner = MessageBar()  # "no model yet": stays apart from passing errors
        self.model_banner.setObjectName("modelBanner")
        layout.addWidget(self.model_banner)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.setDocumentMode(True)
        self.case_view = CaseView(self.context, self.llm_pane)
        self.tabs.addTab(self.case_view, icon_for("analyze"), "Case")
        self.history = self._make_history()
        self.tabs.addTab(self.history, icon_for("history"), "History")
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

    def _make_history(self) -> QWidget:
        HistoryView = optional("app.ui.history_view", "HistoryView")
        if HistoryView is None:
            note = muted(QLabel("The case history view is not part of this build yet."))
            note.setAlignment(Qt.AlignmentFlag.AlignCenter)
            return note
        view = HistoryView(self.context)
        view.open_case.connect(self.open_case)
        return view

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_status = QLabel("Starting…")
        self.model_status.setObjectName("modelStatus")
        bar.addWidget(self.model_status, 1)
        self.task_status = QLabel()
        self.task_status.setObjectName("taskStatus")
        bar.addPermanentWidget(self.task_status)
        self.task_progress = QProgressBar()
        self.task_progress.setObjectName("taskProgress")
        self.task_progress.setMaximumWidth(160)
        self.task_progress.setMaximumHeight(14)
        self.task_progress.setRange(0, 0)
        self.task_progress.setTextVisible(False)
        self.task_progress.hide()
        bar.addPermanentWidget(self.task_progress)
        self.remote_badge = make_badge("REMOTE LLM", "escalate", "remoteIndicator")
        bar.addPermanentWidget(self.remote_badge)

    def _build_account_status(self) -> None:
        """Who signs, beside the model: built after the actions it offers."""
        self.account_status = AccountStatus(self.context, self.act_sign_in, self.act_sign_out)
        self.statusBar().addPermanentWidget(self.account_status)

    def _action(self, text: str, slot, keys: str | list[str] | None = None,
                icon: str | None = None, tip: str = "") -> QAction:
        action = QAction(icon_for(icon) if icon else QIcon(), text, self)
        if keys:
            action.setShortcuts([QKeySequence(k) for k in ([keys] if isinstance(keys, str)
                                                           else keys)])
            shown = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{tip or text.replace('&', '').rstrip('…')} ({shown})")
        elif tip:
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever focus is in the window
        return action

    def _build_actions(self) -> None:
        view = self.case_view
        self.act_new = self._action("&New case", self.new_case, "Ctrl+N", "new",
                                    "Clear the editor for a new case")
        self.act_open = self._action("&Open case…", view.choose_file, "Ctrl+O", "open",
                                     "Open a .txt file or a row of a CSV")
        self.act_import = self._action("&Import batch…", self.import_batch, "Ctrl+I", "import",
                                       "Score a whole file of cases into the history")
        self.act_export = self._action("&Export case to PDF…", self.export_pdf, "Ctrl+E",
                                       "export", "The audit PDF of this case")
        self.act_settings = self._action("&Settings…", self.open_settings, "Ctrl+,", "settings")
        self.act_quit = self._action("&Quit", self.close, "Ctrl+Q")
        self.act_analyze = self._action("&Analyze", self.analyze, ["Ctrl+Return", "Ctrl+Enter"],
                                        "analyze", "Classify, decide and explain this case")
        self.act_cancel = self._action("&Cancel work", view.cancel, "Esc", "cancel",
                                       "Stop the attributions and the AI answer")
        self.act_ask = self._action("Ask the A&I", view.ask_llm, "Ctrl+L", "llm",
                                    "A second opinion from the LLM on this case")
        self.act_accept = self._action("&Accept", self._on_case_tab(view.review.accept),
                                       "Ctrl+1", "accept", "Sign for the model's label "
                                       "(asks for your password)")
        self.act_override = self._action("&Override", self._on_case_tab(view.review.override),
                                         "Ctrl+2", "override")
        self.act_defer = self._action("&Defer", self._on_case_tab(view.review.defer), "Ctrl+3",
                                      "defer")
        self.act_next = self._action("&Next unreviewed case", self.next_case, "Ctrl+Shift+N",
                                     "next", "Open the oldest case nobody has reviewed (this "
                                     "session's deferrals are skipped)")
        self.act_revisit = self._action("&Revisit deferred cases", self.revisit_deferred,
                                        "Ctrl+Shift+D", "defer",
                                        "Open the cases you deferred this session, in turn")
        self.act_case_tab = self._action("&Case", lambda: self.tabs.setCurrentIndex(0),
                                         "Ctrl+Shift+1")
        self.act_history = self._action("&History", lambda: self.tabs.setCurrentIndex(1),
                                        "Ctrl+H", "history")
        self.act_llm = self.llm_dock.toggleViewAction()
        self.act_llm.setText("Second &opinion pane")
        self.act_llm.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.act_models = self._action("&Model manager…", self.open_models, "Ctrl+M", "model")
        self.act_card = self._action("Model &card…", self.open_model_card, "Ctrl+Shift+M",
                                     "model", "Intended use, data, metrics, evidence, limits")
        self.act_train = self._action("&Train the default model", self.train_default, None,
                                      "train")
        self.act_oversight = self._action("&Oversight…", self.open_oversight, None, "history",
                                          "Per week and model: escalations, overrides, and "
                                          "the audited automatic decisions against α")
        self.act_sign_in = self._action("Sign &in…", self.sign_in, None, None,
                                        "Sign in to sign reviews and manage models")
        self.act_sign_out = self._action("Sign &out", self.context.sign_out, None, None,
                                         "Sign out: the next signing asks for a login id")
        self.act_keys = self._action("&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = self._action("&About Casewise", self.open_about, None, "about")

    def _build_menus(self) -> None:
        menus = (("&File", (self.act_new, self.act_open, self.act_import, None, self.act_export,
                            None, self.act_settings, None, self.act_quit)),
                 ("&Case", (self.act_analyze, self.act_cancel, self.act_ask, None,
                            self.act_accept, self.act_override, self.act_defer, None,
                            self.act_next, self.act_revisit)),
                 ("&View", (self.act_case_tab, self.act_history, self.act_llm)),
                 ("&Models", (self.act_card, self.act_models, self.act_train, None,
                              self.act_oversight)),
                 ("A&ccount", (self.act_sign_in, self.act_sign_out)),
                 ("&Help", (self.act_keys, self.act_about)))
        for title, actions in menus:
            menu = self.menuBar().addMenu(title)
            for action in actions:
                menu.addSeparator() if action is None else menu.addAction(action)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.act_new, self.act_open, self.act_analyze, self.act_cancel, None,
                       self.act_ask, self.act_next, None, self.act_export, self.act_history):
            bar.addSeparator() if action is None else bar.addAction(action)

    def _connect(self) -> None:
        ctx = self.context
        ctx.message.connect(self.show_message)
        ctx.offer.connect(lambda level, text, label, action:
                          self.show_message(level, text, (label, action)))
        ctx.offers.connect(self.show_message)
        ctx.workbench_changed.connect(self._workbench_changed)
        ctx.guarantee_changed.connect(self._guarantee_changed)
        ctx.settings_changed.connect(self._settings_changed)
        ctx.store_ready.connect(lambda store: self._show_store(store))
        ctx.runner.busy_changed.connect(self._busy_changed)
        ctx.runner.failed.connect(self._task_failed)
        self.case_view.llm_wanted.connect(self._show_llm)
        self.case_view.result.card_requested.connect(self.open_model_card)
        self.case_view.state_changed.connect(self._case_changed)
        self.case_view.busy_changed.connect(self.act_cancel.setEnabled)
        self._settings_changed(ctx.settings)
        self._case_changed(None)
        self.act_cancel.setEnabled(False)
        self.act_analyze.setEnabled(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.centralWidget() and event.type() == QEvent.Type.Resize:
            self._place_message_bar()
        return super().eventFilter(watched, event)

    def _place_message_bar(self) -> None:
        """Centred at the bottom of the central area, at most MESSAGE_WIDTH wide."""
        central, bar = self.centralWidget(), self.message_bar
        if central is None:
            return
        width = min(central.width() - 24, MESSAGE_WIDTH)
        height = bar.heightForWidth(width) if bar.hasHeightForWidth() else -1
        height = max(height, bar.sizeHint().height())
        bar.setGeometry((central.width() - width) // 2, central.height() - height - 10,
                        width, height)

    # -- reacting -------------------------------------------------------------------------------
    def show_message(self, level: str, text: str, action: tuple | None = None) -> None:
        getattr(log, "error" if level == "error" else "warning" if level == "warning"
                else "info")("%s", text)
        self.message_bar.show_message(level, text, action)

    def _workbench_changed(self, bench) -> None:
        self.act_analyze.setEnabled(bench is not None)
        self.case_view.analyze_button.setEnabled(bench is not None)
        if bench is None:
            self.model_status.setText("No model yet")
            message = optional("app.ui.models_dialog", "first_start_message")
            self.model_banner.show_message(
                "warning", message() if message else "There is no model yet: train the "
                "default model on the drug-review demo data (a few minutes).",
                ("Train the default model", self.train_default))
            return
        self.model_banner.dismiss()
        policy = "no escalation policy" if bench.policy is None else "escalation policy fitted"
        self.model_status.setText(f"Model {bench.model_id} · {', '.join(bench.labels)} · "
                                  f"{policy}")

    def _guarantee_changed(self, watch) -> None:
        """While the audited automatic decisions break the certified bound, the banner says
        so and stays (every case is escalated until a new policy is fitted)."""
        if watch is not None and watch.alarm:
            self.model_banner.show_message("error", watch.summary())
        elif self.context.workbench is not None:
            self.model_banner.dismiss()

    def _task_failed(self, name: str, _text: str) -> None:
        if name == "load model":
            self.model_status.setText("The model could not be loaded (see the message above)")

    def show_loading(self) -> None:
        self.model_status.setText("Loading the model…")

    def _show_store(self, store) -> None:
        self.model_status.setToolTip(f"Case history: {store.location}")

    def _settings_changed(self, settings) -> None:
        remote = remote_settings(settings)
        self.remote_badge.setVisible(remote)
        self.remote_badge.setToolTip(f"The LLM backend is remote ({settings.llm_base_url}): "
                                     "de-identified cases leave this machine when you ask "
                                     "it" if remote else "")

    def _busy_changed(self, running: int) -> None:
        names = self.context.runner.running_names()
        self.task_progress.setVisible(running > 0)
        self.task_status.setText(f"{running} task{'s' if running != 1 else ''} running"
                                 if running else "")
        self.task_status.setToolTip(", ".join(names))

    def _case_changed(self, state) -> None:
        has_case = state is not None and state.case_id is not None
        self.act_export.setEnabled(has_case)
        self.setWindowTitle(f"Casewise — case {state.case_id}" if has_case else "Casewise")

    def _show_llm(self) -> None:
        self.llm_dock.show()
        self.llm_dock.raise_()

    def _on_case_tab(self, slot):
        """``slot`` when the Case tab shows; else the tab is shown first (a decision is made
        on the case the reviewer sees)."""
        def run() -> None:
            if self.tabs.currentWidget() is not self.case_view:
                self.show_case_tab()
                return
            slot()
        return run

    def show_case_tab(self) -> None:
        """Actions on the case go to the Case tab first: nothing is typed into, or analysed
        from, an editor the reviewer cannot see."""
        self.tabs.setCurrentWidget(self.case_view)

    def new_case(self) -> None:
        self.show_case_tab()
        self.case_view.new_case()

    def analyze(self) -> None:
        if self.tabs.currentWidget() is not self.case_view:
            self.show_case_tab()  # show what would be analysed; a second press analyses it
            return
        self.case_view.analyze()

    def next_case(self) -> None:
        self.show_case_tab()
        self.case_view.next_case()

    def revisit_deferred(self) -> None:
        self.show_case_tab()
        self.case_view.revisit_deferred()

    def open_case(self, case_id: int) -> None:
        self.tabs.setCurrentWidget(self.case_view)
        self.case_view.load_case(case_id)

    # -- training the first model ---------------------------------------------------------------
    def train_default(self) -> Task | None:
        """Train the default model behind the window, in the model manager's training window
        (progress and cancel; it loads the new model and files it in the trail)."""
        if self.training is not None:
            return self.training
        start_training = optional("app.ui.models_dialog", "start_training")
        if start_training is None:
            self.show_message("info", "Training is not part of this build yet.")
            return None
        self.model_banner.dismiss()
        self.training = start_training(self.context, None, self).task
        self.training.on_finished(self._training_over)
        return self.training

    def _training_over(self) -> None:
        self.training = None

    # -- other parts of the app (lazy) ----------------------------------------------------------
    def _open_part(self, module: str, name: str, what: str, *args) -> QWidget | None:
        part = optional(module, name)
        if part is None:
            self.show_message("info", f"{what} is not part of this build yet.")
            return None
        dialog = part(*args, self)
        dialog.show()
        return dialog

    def sign_in(self) -> QDialog | None:
        """Sign in, or create the first admin of a history that has no users yet."""
        return open_sign_in(self.context, self)

    def open_settings(self) -> None:
        self._open_part("app.ui.settings_dialog", "SettingsDialog", "The settings dialog",
                        self.context)

    def open_model_card(self, model_id: str | None = None) -> None:
        """The card of ``model_id`` (a prediction's model), or of the active model."""
        bench = self.context.workbench
        if model_id and (bench is None or bench.model_id != model_id):
            show = optional("app.ui.models_dialog", "show_model_card_for")
            if show is not None:
                show(self.context, model_id, self)
            return
        show = optional("app.ui.models_dialog", "show_model_card")
        if show is not None:
            show(self.context, self)

    def open_models(self) -> None:
        self._open_part("app.ui.models_dialog", "ModelsDialog", "The model manager",
                        self.context)

    def import_batch(self) -> None:
        self._open_part("app.ui.batch_import", "BatchImportDialog", "Batch import",
                        self.context)

    def open_oversight(self) -> None:
        self._open_part("app.ui.oversight_view", "OversightDialog", "The oversight page",
                        self.context)

    def open_about(self) -> None:
        self._open_part("app.ui.about", "AboutDialog", "The about box")

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(0, 2, dialog)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().hide()
        for action in self.actions():
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                row = table.rowCount()
                table.insertRow(row)
                table.setItem(row, 0, QTableWidgetItem(action.text().replace("&", "")))
                table.setItem(row, 1, QTableWidgetItem(keys))
        table.resizeColumnsToContents()
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        dialog.resize(420, 520)
        dialog.show()

    # -- export ---------------------------------------------------------------------------------
    def export_pdf(self) -> None:
        state = self.case_view.state
        if state is None or state.case_id is None:
            self.show_message("warning", "Analyze or open a stored case to export it.")
            return
        if state.blind:  # the PDF shows the model's answer
            self.show_message("warning", f"Blind review: record your judgement on case "
                                         f"{state.case_id} before exporting it.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export case to PDF",
                                              str(Path.home() / f"case-{state.case_id}.pdf"),
                                              "PDF (*.pdf)")
        if path:
            self.export_case(state.case_id, Path(path))

    def export_case(self, case_id: int, out: Path) -> Task:
        """The audit PDF of one case, written off the GUI thread."""
        from app.ui.tasks import SerialisedStore

        # Rendering is long, so it runs on the compute pool; its reads and the audit event go
        # through the one database worker all the same.
        store = SerialisedStore(self.context.store, self.context.runner)
        data_dir = self.context.data_dir

        def export(ctx):
            from app.ui.history_view import run_export

            return run_export(store, [case_id], out, data_dir, ctx)
        self.last_export = self.context.runner.run("export PDF", export) \
            .on_success(self._exported) \
            .on_finished(lambda: self.context.cases_changed.emit(None)).start()
        return self.last_export

    def _exported(self, result) -> None:
        pages = f"{result.pages} page{'s' if result.pages != 1 else ''}"
        self.show_message("info", f"Saved {result.path} ({pages}, SHA-256 "
                                  f"{result.sha256[:12]}…).",
                          ("Open PDF", lambda: open_file(result.path)))

    # -- layout persistence -----------------------------------------------------------------------
    def _layout_store(self) -> QSettings | None:
        directory = self.context.config_dir
        if not self.remember_layout or directory is None:
            return None
        return QSettings(str(Path(directory) / WINDOW_FILE), QSettings.Format.IniFormat)

    def _splitters(self) -> dict:
        return {"split/case": self.case_view.splitter, "split/left": self.case_view.left,
                "split/evidence": self.case_view.attribution.splitter}

    def restore_layout(self) -> None:
        stored = self._layout_store()
        if stored is None:
            return
        geometry = stored.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = stored.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
            self.llm_dock.hide()  # the pane opens when a case wants it, not from last time
        for key, splitter in self._splitters().items():
            value = stored.value(key)
            if isinstance(value, QByteArray):
                splitter.restoreState(value)

    def save_layout(self) -> None:
        stored = self._layout_store()
        if stored is None:
            return
        stored.setValue("window/geometry", self.saveGeometry())
        stored.setValue("window/state", self.saveState())
        for key, splitter in self._splitters().items():
            stored.setValue(key, splitter.saveState())
        stored.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.context.close()  # cancels running work and waits for it briefly
        event.accept()
