"""Accounts in the window's tests: real users (``tests.helpers.accounts``), signed in through
the window's own session on its database worker, and the sign-in and sign dialogs filled in
the way a reviewer would (they open with ``open()``, so nothing blocks).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app.ui.sign_dialog import SignDialog
from app.ui.sign_in_dialog import SignInDialog
from tests.helpers.accounts import ADMIN, PASSWORD, admin_session, user

WAIT = 60_000  # ms


def account_work(qtbot, context, work):
    """``work(session)`` through ``context.account_task`` (as the dialogs do); its value."""
    task = context.account_task("test", work)
    with qtbot.waitSignal(task.signals.succeeded, timeout=WAIT) as blocker:
        task.start()
    return blocker.args[0]


def add_user(qtbot, context, login: str, role: str = "approver") -> None:
    """Make ``login`` a user of the window's history (the admin ``admin`` first)."""
    def make(session) -> None:
        if login == ADMIN:
            admin_session(session.store)
        else:
            user(session.store, login, role)
    account_work(qtbot, context, make)


def sign_in(qtbot, context, login: str = ADMIN, role: str = "approver"):
    """Make ``login`` if needed and sign them in to the window's session; the Account."""
    from app.accounts.errors import AccountError

    add_user(qtbot, context, login, role)
    account = account_work(qtbot, context, lambda session: session.sign_in(login, PASSWORD))
    assert not isinstance(account, AccountError), account
    return account


def visible(parent: QWidget, kind: type):
    found = [d for d in parent.findChildren(kind) if d.isVisible()]
    return found[-1] if found else None


def sign_dialog(qtbot, parent: QWidget) -> SignDialog:
    qtbot.waitUntil(lambda: visible(parent, SignDialog) is not None, timeout=WAIT)
    return visible(parent, SignDialog)


def sign(qtbot, parent: QWidget, password: str = PASSWORD,
         login: str | None = None) -> SignDialog:
    """Fill the sign dialog that ``parent``'s window opened and press Sign. ``login`` only
    when the dialog asks for it (the first signing of a session, or after the idle limit)."""
    dialog = sign_dialog(qtbot, parent)
    assert dialog.login.isVisible() == (login is not None), \
        "the dialog asks for the login id exactly when the session needs it"
    if login is not None:
        dialog.login.setText(login)
    dialog.password.setText(password)
    qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    return dialog


def fill_sign_in(qtbot, dialog: SignInDialog, login: str, password: str = PASSWORD,
                 full_name: str = "", repeat: str | None = None) -> None:
    dialog.login.setText(login)
    dialog.password.setText(password)
    if dialog.first_admin:
        dialog.full_name.setText(full_name)
        dialog.repeat.setText(password if repeat is None else repeat)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)


def gone(dialog) -> bool:
    """Closed (the dialogs delete themselves when they close)."""
    return not shiboken6.isValid(dialog) or not dialog.isVisible()


def answered(qtbot, dialog) -> None:
    """Wait until the dialog's last request came back (it shows an error or is gone)."""
    qtbot.waitUntil(lambda: gone(dialog) or not dialog.pending, timeout=WAIT)
