"""Signing a review: what is signed (case, decision, label, reason, meaning) and the password;
the login id too for the first signing of a session or after the idle limit
(21 CFR 11.200(a)). Every signing needs the password again.

The password goes straight to ``AccountSession.unlock`` on the database worker, in the same
call that writes the review (Argon2id and the write, about a quarter of a second), and is
never kept. A wrong password (counted by the core: the fifth locks the account), a locked
account or a role that may not sign this is said in the dialog; a refusal of the history
(the case changed since it was shown) closes it and the case view says why.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from app.ui.result_panel import muted
from app.ui.sign_in_dialog import close_and_return, error_label, one_use, password_field
from app.ui.signatures import account_text
from app.ui.tasks import Task

DECISION_WORDS = {"accept": "accept the model's label", "override": "override the label",
                  "defer": "defer the case"}


@dataclass(frozen=True)
class SignRequest:
    """One review to sign: the case version the reviewer was shown, and what they decided."""

    case_id: int
    version: str | None  # the store refuses the review if the case changed since
    decision: str
    label: str | None
    reason: str | None
    meaning: str


def summary_text(request: SignRequest) -> str:
    """What the signature will cover, as the signer reads it before typing the password
    (plain text: a reason is shown as typed, never read as markup)."""
    rows = [("Case", f"#{request.case_id}"),
            ("Decision", DECISION_WORDS.get(request.decision, request.decision)),
            ("Label", request.label or "—"), ("Reason", request.reason or "—"),
            ("Meaning of the signature", request.meaning)]
    return "You are signing this review electronically:\n\n" + \
        "\n".join(f"{name}: {value}" for name, value in rows)


def sign_review(session, request: SignRequest, password: str, login: str | None):
    """On the database worker: unlock the signer's key and write the signed review."""
    signer = session.unlock(password, login)
    return session.store.review_case(request.case_id, signer, request.decision, request.label,
                                     request.reason, request.meaning,
                                     expected_sha256=request.version)


class SignDialog(QDialog):
    """Modal to its window (``open()``), never blocking its caller; deleted when closed."""

    signed = Signal(object)  # app.store.CaseWrite of the signed review
    failed = Signal(str)  # the history refused the review (not an account problem)

    def __init__(self, context: AppContext, request: SignRequest,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.request = request
        self.task: Task | None = None
        self.pending = False  # an answer is on its way: the dialog stays until it comes
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setObjectName("signDialog")
        self.setWindowTitle(f"Sign the review of case {request.case_id}")
        self.setWindowIcon(icon("accept"))
        self._build()
        self.set_needs_login(context.session is None or context.session.needs_login_to_sign())

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.summary = QLabel(summary_text(self.request), objectName="signSummary")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.who = muted(QLabel(objectName="signWho"))
        self.who.setTextFormat(Qt.TextFormat.PlainText)  # a name is shown, never markup
        layout.addWidget(self.who)
        form = QFormLayout()
        self.login = QLineEdit(objectName="signLogin")
        self.login_caption = QLabel("&Login id:")
        self.login_caption.setBuddy(self.login)
        form.addRow(self.login_caption, self.login)
        self.password = password_field("signPassword")
        form.addRow("&Password:", self.password)
        layout.addLayout(form)
        self.error = error_label("signError")
        layout.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.sign_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_button.setText("Sign")
        self.sign_button.setObjectName("signButton")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(440)

    def set_needs_login(self, needed: bool) -> None:
        """The login id is asked for the first signing of a session and after the idle
        limit; otherwise the signed-in user signs with the password alone."""
        self.needs_login = needed
        self.login.setVisible(needed)
        self.login_caption.setVisible(needed)
        session = self.context.session
        user = None if session is None else session.user
        if needed:
            self.who.setText("Type your login id and password: this is the first signing of "
                             "the session, or none was made for a while.")
            (self.login if not self.login.text() else self.password).setFocus()
        else:
            self.who.setText(f"Signing as {account_text(user)}. Type your password to "
                             "sign.")
            self.password.setFocus()

    # -- signing ---------------------------------------------------------------------------
    def submit(self) -> Task | None:
        login = self.login.text().strip() if self.needs_login else None
        password = self.password.text()
        if self.needs_login and not login:
            self.show_error("Type your login id.")
            self.login.setFocus()
            return None
        if not password:
            self.show_error("Type your password.")
            self.password.setFocus()
            return None
        self.password.clear()  # sent once, kept nowhere
        take, request = one_use(password), self.request
        self._busy(True)
        self.task = self.context.account_task(
            "sign review", lambda session: sign_review(session, request, take(), login),
            owner=self).on_success(self._answered).on_failure(self._refused).start()
        return self.task

    def _answered(self, outcome) -> None:
        from app.accounts.errors import AccountError, AccountLocked, SessionExpired

        self._busy(False)
        if not isinstance(outcome, AccountError):
            self.signed.emit(outcome)
            self.accept()
            return
        self.show_error(str(outcome))
        if isinstance(outcome, SessionExpired):
            self.set_needs_login(True)
        elif isinstance(outcome, AccountLocked):
            self.password.setEnabled(False)  # retrying cannot help: an admin must reset
            self.sign_button.setEnabled(False)
        else:
            self.password.setFocus()

    def _refused(self, message: str) -> None:
        self._busy(False)
        self.failed.emit(message)
        self.reject()

    def _busy(self, busy: bool) -> None:
        self.pending = busy
        self.sign_button.setEnabled(not busy)
        self.login.setReadOnly(busy)
        self.password.setReadOnly(busy)

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def reject(self) -> None:
        if self.pending:
            return  # the signature is being written; the dialog closes when it is
        super().reject()

    def done(self, result: int) -> None:
        close_and_return(self, result)


def open_sign_dialog(context: AppContext, request: SignRequest,
                     parent: QWidget | None = None) -> SignDialog:
    dialog = SignDialog(context, request, parent)
    dialog.open()
    return dialog
