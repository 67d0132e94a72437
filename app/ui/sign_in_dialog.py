"""Signing in to the case history: login id and password; or, while the history has no users
yet, making its first admin (login id, printed name, password twice).

Reading needs nobody signed in; signing reviews and admin actions do. The password goes
straight to ``app.accounts`` on the database worker (Argon2id takes a quarter of a second)
and is never kept: the field is cleared as soon as it is sent.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.result_panel import TONES, muted
from app.ui.tasks import Task


def password_field(name: str) -> QLineEdit:
    field = QLineEdit(objectName=name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    # No input method, no clipboard copy and no autocompletion of what is typed here.
    field.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled, False)
    return field


def error_label(name: str) -> QLabel:
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {TONES['danger']};")
    label.hide()
    return label


def close_and_return(dialog: QDialog, result: int) -> None:
    """Close ``dialog`` and give its window the keyboard back, so the review shortcuts work
    at once (not every platform re-activates the window a modal dialog leaves)."""
    parent = dialog.parentWidget()
    window = parent.window() if parent is not None else None
    QDialog.done(dialog, result)
    if window is not None:
        window.activateWindow()


def one_use(secret: str):
    """The password for one worker call: it is taken out when used, so the task object, which
    lives on after it ran, does not keep it."""
    box = [secret]
    return box.pop


class SignInDialog(QDialog):
    """Non-modal to the app (``open()``: modal to the window, never blocking a caller)."""

    signed_in = Signal(object)  # app.store.Account

    def __init__(self, context: AppContext, first_admin: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.first_admin = first_admin
        self.task: Task | None = None
        self.pending = False  # an answer is on its way: the dialog stays until it comes
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setObjectName("signInDialog")
        self.setWindowTitle("Create the first admin" if first_admin else "Sign in")
        self.setWindowIcon(icon("accept"))
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(muted(QLabel(
            "This case history has no users yet. Make its admin: they add the other users, "
            "and sign like any reviewer. The printed name is shown with every signature."
            if self.first_admin else
            "Sign in to sign reviews and to manage models. Reading the history needs no "
            "sign-in.")))
        form = QFormLayout()
        self.login = QLineEdit(objectName="signInLogin")
        self.login.setPlaceholderText("for example ann.archer")
        form.addRow("&Login id:", self.login)
        self.full_name = QLineEdit(objectName="signInFullName")
        self.password = password_field("signInPassword")
        self.repeat = password_field("signInRepeat")
        if self.first_admin:
            self.full_name.setPlaceholderText("as printed with your signature")
            form.addRow("&Full name:", self.full_name)
        form.addRow("&Password:", self.password)
        if self.first_admin:
            self.password.setPlaceholderText("at least 12 characters")
            form.addRow("&Again:", self.repeat)
        layout.addLayout(form)
        self.error = error_label("signInError")
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Create and sign in" if self.first_admin else "Sign in")
        self.ok_button.setObjectName("signInButton")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)

    # -- signing in ------------------------------------------------------------------------
    def submit(self) -> Task | None:
        login, password = self.login.text().strip(), self.password.text()
        repeat, full_name = self.repeat.text(), self.full_name.text()
        problem = self._missing(login, password, repeat, full_name)
        if problem:
            self.show_error(problem)
            return None
        self.password.clear()  # sent once, kept nowhere
        self.repeat.clear()
        take = one_use(password)
        if self.first_admin:
            def work(session):
                from app.accounts.service import create_user

                secret = take()
                create_user(session, login, full_name, "admin", secret)
                return session.sign_in(login, secret)
        else:
            def work(session):
                return session.sign_in(login, take())
        self._busy(True)
        self.task = self.context.account_task("sign in", work, owner=self) \
            .on_success(self._answered).on_failure(self._failed).start()
        return self.task

    def _missing(self, login: str, password: str, repeat: str, full_name: str) -> str | None:
        if not login:
            self.login.setFocus()
            return "Type your login id."
        if self.first_admin and not full_name.strip():
            self.full_name.setFocus()
            return "Type the full name that is printed with the signatures."
        if not password:
            self.password.setFocus()
            return "Type your password."
        if self.first_admin and password != repeat:
            self.password.clear()
            self.repeat.clear()
            self.password.setFocus()
            return "The two passwords differ; type them again."
        return None

    def _answered(self, outcome) -> None:
        from app.accounts.errors import AccountError, AccountLocked

        self._busy(False)
        if isinstance(outcome, AccountError):
            self.show_error(str(outcome))
            if isinstance(outcome, AccountLocked):
                self.password.setEnabled(False)  # retrying cannot help: an admin must reset
            self.password.setFocus()
            return
        self.signed_in.emit(outcome)
        self.accept()

    def _failed(self, message: str) -> None:
        self._busy(False)
        self.show_error(message)

    def _busy(self, busy: bool) -> None:
        self.pending = busy
        self.ok_button.setEnabled(not busy)
        for field in (self.login, self.full_name, self.password, self.repeat):
            field.setReadOnly(busy)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def reject(self) -> None:
        if self.pending:
            return  # the answer is on its way; the dialog closes when it comes
        super().reject()

    def done(self, result: int) -> None:
        close_and_return(self, result)


def open_sign_in(context: AppContext, parent: QWidget | None = None) -> SignInDialog | None:
    """Open the sign-in dialog (or, for a history with no users, the first admin's), modal
    to ``parent``'s window and without blocking."""
    if context.session is None:
        context.message.emit("warning", "The case history is not open yet; sign in once it "
                                        "is.")
        return None
    dialog = SignInDialog(context, context.has_users is False, parent)
    dialog.open()
    return dialog
