"""Who is signed in, in the status bar: the printed name, login id and role, with the sign-in
or sign-out action beside it. Also says when the history has no users yet (the action then
creates the first admin) and when the next signing will ask for the login id again.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.ui.context import AppContext
from app.ui.signatures import account_text

REFRESH_MS = 30_000  # the idle limit is minutes long: a half-minute look is soon enough


class AccountStatus(QWidget):
    def __init__(self, context: AppContext, sign_in: QAction, sign_out: QAction,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.sign_in, self.sign_out = sign_in, sign_out
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(objectName="accountStatus")
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # a name is shown, never markup
        layout.addWidget(self.label)
        self.button = QToolButton(objectName="accountButton")
        self.button.setAutoRaise(True)
        layout.addWidget(self.button)
        context.account_changed.connect(self.refresh)
        context.store_ready.connect(self.refresh)
        # The session expires by the clock, with no event to say so.
        self._timer = QTimer(self, interval=REFRESH_MS, timeout=self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self, *_changed: object) -> None:
        session = self.context.session
        user = None if session is None else session.user
        no_users = session is not None and self.context.has_users is False
        self.sign_in.setEnabled(session is not None)
        self.sign_in.setText("Create the first &admin…" if no_users else "Sign &in…")
        self.sign_out.setEnabled(user is not None)
        self.label.setText(self._text(session, user, no_users))
        self.label.setToolTip("Signing a review asks for your password each time, and for "
                              "your login id too after a while without signing.")
        self.button.setDefaultAction(self.sign_out if user is not None else self.sign_in)

    @staticmethod
    def _text(session, user, no_users: bool) -> str:
        if session is None:
            return "Case history not open"
        if no_users:
            return "No users yet"
        if user is None:
            return "Not signed in"
        later = " · next signing asks for your login id" if session.expired() else ""
        return f"Signed in: {account_text(user)}{later}"
