"""Accounts in the window: signing in (and the first admin), the sign dialog, signatures as
the window shows them, and the roles the window enforces. Real users (Argon2id, Ed25519) in
a real history, through the window's own session on its database worker; nothing mocked.

The history of ``ui_context`` has the users ``admin`` (admin), ``ann`` and ``bob``
(approvers): its first 40 cases were signed by ann and bob.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from PySide6.QtCore import Qt

from app.settings import SETTINGS_FILE
from app.store.canonical import utc_now
from app.store.records import Review, ReviewSignature
from app.ui.main_window import MainWindow
from app.ui.sign_dialog import SignDialog
from app.ui.sign_in_dialog import SignInDialog
from tests.helpers.accounts import PASSWORD, admin_session
from tests.helpers.ui_accounts import (
    WAIT,
    account_work,
    add_user,
    answered,
    fill_sign_in,
    gone,
    sign,
    sign_dialog,
    sign_in,
    visible,
)

CASE = 100  # not reviewed in the fixture's history


@pytest.fixture()
def window(qtbot, ui_context):
    """The main window on the fixture's history; no model, so opening a case computes
    nothing (the stored records are shown) and the review queue stays put."""
    ui_context.workbench = None
    ui_context.settings = replace(ui_context.settings, review_queue=False)
    made = MainWindow(ui_context, remember_layout=False)
    qtbot.addWidget(made)
    made.show()
    return made


def open_case(qtbot, window, case_id: int = CASE):
    view = window.case_view
    window.open_case(case_id)
    qtbot.waitUntil(lambda: view.state is not None and view.state.case_id == case_id
                    and view.review.final_box.isEnabled(), timeout=WAIT)
    return view


def stored_reviews(qtbot, context, case_id: int = CASE) -> list:
    return list(account_work(qtbot, context,
                             lambda session: session.store.get_case(case_id).reviews))


# -- signing in --------------------------------------------------------------------------------

def test_sign_in_shows_the_user_in_the_status_bar_and_sign_out_ends_it(qtbot, window):
    context = window.context
    status = window.account_status.label
    assert status.text() == "Not signed in" and not window.act_sign_out.isEnabled()
    assert "Not signed in" in window.case_view.review.signer.text()
    window.act_sign_in.trigger()
    dialog = visible(window, SignInDialog)
    assert dialog is not None and not dialog.first_admin
    fill_sign_in(qtbot, dialog, "ann")
    qtbot.waitUntil(lambda: gone(dialog), timeout=WAIT)
    assert context.session.user.login == "ann"
    assert status.text() == "Signed in: Ann Archer (ann, approver)"
    assert "Ann Archer (ann, approver)" in window.case_view.review.signer.text()
    assert window.account_status.button.defaultAction() is window.act_sign_out
    with qtbot.waitSignal(context.account_changed, timeout=WAIT):
        window.act_sign_out.trigger()
    assert context.session.user is None and status.text() == "Not signed in"


def test_a_wrong_password_says_how_many_attempts_are_left_and_the_fifth_locks(qtbot,
                                                                             ui_context):
    dialog = SignInDialog(ui_context, first_admin=False)
    qtbot.addWidget(dialog)
    dialog.open()
    for left in (4, 3, 2, 1):
        fill_sign_in(qtbot, dialog, "bob", "not bob's password")
        answered(qtbot, dialog)
        assert f"{left} attempt(s) left" in dialog.error.text()
        assert dialog.password.text() == ""  # sent once, never kept in the field
    fill_sign_in(qtbot, dialog, "bob", "not bob's password")
    answered(qtbot, dialog)
    assert "now locked" in dialog.error.text() and not dialog.password.isEnabled()
    dialog.password.setEnabled(True)
    fill_sign_in(qtbot, dialog, "bob")  # the right password no longer opens it
    answered(qtbot, dialog)
    assert "locked" in dialog.error.text() and "admin" in dialog.error.text()
    assert ui_context.session.user is None and dialog.isVisible()


def test_unknown_and_disabled_accounts_are_refused_in_the_dialog(qtbot, ui_context):
    from app.accounts.service import set_disabled

    account_work(qtbot, ui_context,
                 lambda session: set_disabled(admin_session(session.store), "bob", True))
    dialog = SignInDialog(ui_context, first_admin=False)
    qtbot.addWidget(dialog)
    dialog.open()
    fill_sign_in(qtbot, dialog, "nobody")
    answered(qtbot, dialog)
    assert "There is no user 'nobody'" in dialog.error.text()
    fill_sign_in(qtbot, dialog, "bob")
    answered(qtbot, dialog)
    assert "disabled" in dialog.error.text()
    assert ui_context.session.user is None


@pytest.fixture()
def empty_context(qtbot, tmp_path):
    """A context on a new, empty history (no users), with no model."""
    from app.settings import Settings
    from app.ui.context import AppContext

    context = AppContext(Settings(data_dir=str(tmp_path / "data")),
                         config_dir=tmp_path / "config")
    with qtbot.waitSignal(context.store_ready, timeout=WAIT):
        context.open_store(tmp_path / "new.db")
    yield context
    context.close()


def test_a_history_without_users_offers_its_first_admin(qtbot, empty_context):
    window = MainWindow(empty_context, remember_layout=False)
    qtbot.addWidget(window)
    assert empty_context.has_users is False
    assert window.account_status.label.text() == "No users yet"
    assert window.act_sign_in.text() == "Create the first &admin…"
    window.act_sign_in.trigger()
    dialog = visible(window, SignInDialog)
    assert dialog.first_admin and dialog.full_name.isVisible()
    fill_sign_in(qtbot, dialog, "ada", full_name="Ada Lovelace", repeat="something else")
    assert "differ" in dialog.error.text() and empty_context.has_users is False
    fill_sign_in(qtbot, dialog, "ada", "short", full_name="Ada Lovelace")
    answered(qtbot, dialog)
    assert "at least 12 characters" in dialog.error.text()
    fill_sign_in(qtbot, dialog, "ada", full_name="Ada Lovelace")
    qtbot.waitUntil(lambda: gone(dialog), timeout=WAIT)
    assert empty_context.has_users is True
    assert window.account_status.label.text() == "Signed in: Ada Lovelace (ada, admin)"
    assert window.act_sign_in.text() == "Sign &in…"


def test_signing_in_a_history_without_users_offers_the_first_admin(qtbot, empty_context):
    from tests.store_helpers import prediction

    context = empty_context
    window = MainWindow(context, remember_layout=False)
    qtbot.addWidget(window)
    window.show()
    case_id = account_work(qtbot, context, lambda session: session.store.add_case(
        "a stored case", prediction=prediction()).case_id)
    view = open_case(qtbot, window, case_id)
    view.review.accept()
    bar = window.message_bar
    assert "has none yet" in bar.text.text() and visible(window, SignDialog) is None
    assert bar.action_button.text() == "Create the first admin"
    bar.action_button.click()
    dialog = visible(window, SignInDialog)
    assert dialog is not None and dialog.first_admin
    fill_sign_in(qtbot, dialog, "ada", full_name="Ada Lovelace")
    qtbot.waitUntil(lambda: gone(dialog), timeout=WAIT)
    view.review.accept()
    # Signed in a moment ago, but the first signing of a session still takes every
    # component of the signature (21 CFR 11.200(a)(1)(i)): the login id and the password.
    sign(qtbot, window, login="ada")
    qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)
    assert view.state.reviews[0].signature.verified


def test_the_window_anchors_the_audit_chain_with_the_installation_key(qtbot, empty_context):
    from app.store import open_store

    location = empty_context.store.location
    sign_in(qtbot, empty_context, "admin")
    empty_context.close()  # the close checkpoint signs the head
    with open_store(location) as store:
        checked = store.verify_chain()
    assert checked.ok and checked.anchored_to is not None and checked.unanchored_events == 0


# -- signing reviews ---------------------------------------------------------------------------

def test_a_review_is_signed_through_the_dialog_and_its_signature_verifies(qtbot, window,
                                                                         caplog):
    from app.ui.case_trail import CaseTrailDialog, open_case_trail

    context = window.context
    view = open_case(qtbot, window)
    view.review.meaning.setCurrentText("approved")
    with caplog.at_level(logging.DEBUG):
        view.review.accept()
        dialog = sign_dialog(qtbot, window)
        summary = dialog.summary.text()
        assert f"#{CASE}" in summary and "accept the model" in summary
        assert "approved" in summary
        sign(qtbot, window, login="ann")  # nobody signed in: the login id is asked
        qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)
    assert PASSWORD not in caplog.text
    review = stored_reviews(qtbot, context)[-1]
    assert review.signature.verified and review.signature.login == "ann"
    assert review.signature.full_name == "Ann Archer" and review.meaning == "approved"
    assert "signature verified" in view.review.history.text()
    assert "Signed by Ann Archer (ann, approver)" in view.review.history.text()
    assert window.account_status.label.text() == "Signed in: Ann Archer (ann, approver)"

    # The next signing of the session asks for the password only.
    view.review.meaning.setCurrentText("reviewed")
    view.review.defer()
    sign(qtbot, window)
    qtbot.waitUntil(lambda: len(view.state.reviews) == 2, timeout=WAIT)

    trails = []
    open_case_trail(context, CASE, window, trails.append)
    qtbot.waitUntil(lambda: bool(trails), timeout=WAIT)
    text = trails[0].browser.toPlainText()
    assert isinstance(trails[0], CaseTrailDialog)
    assert text.count("signature verified") == 2 and "Ann Archer (ann, approver)" in text
    assert " UTC" in text and "approved" in text
    trails[0].close()


def test_after_the_idle_limit_the_login_id_is_asked_again(qtbot, window):
    context = window.context
    sign_in(qtbot, context, "ann")
    view = open_case(qtbot, window)
    later = [timedelta(0)]
    context.session.clock = lambda: utc_now() + later[0]  # the session's own clock, moved

    # The first signing of the session: the login id and the password.
    view.review.accept()
    sign(qtbot, window, login="ann")
    qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)

    # Idle while the dialog is open: the password alone is refused, the login id is asked.
    view.review.accept()
    dialog = sign_dialog(qtbot, window)
    assert not dialog.login.isVisible()
    later[0] = timedelta(minutes=16)
    dialog.password.setText(PASSWORD)
    qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    answered(qtbot, dialog)
    assert "login id" in dialog.error.text() and dialog.login.isVisible()
    dialog.login.setText("ann")
    dialog.password.setText(PASSWORD)
    qtbot.mouseClick(dialog.sign_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(view.state.reviews) == 2, timeout=WAIT)

    # Idle before the next one: the dialog asks for both at once.
    later[0] = timedelta(minutes=40)
    window.account_status.refresh()
    assert "next signing asks for your login id" in window.account_status.label.text()
    view.review.accept()
    sign(qtbot, window, login="ann")
    qtbot.waitUntil(lambda: len(view.state.reviews) == 3, timeout=WAIT)
    assert all(r.signature.verified for r in stored_reviews(qtbot, context))


def test_a_wrong_password_in_the_sign_dialog_signs_nothing(qtbot, window):
    context = window.context
    sign_in(qtbot, context, "ann")
    view = open_case(qtbot, window)
    view.review.accept()
    dialog = sign(qtbot, window, password="not ann's password", login="ann")
    answered(qtbot, dialog)
    assert "4 attempt(s) left" in dialog.error.text() and dialog.isVisible()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gone(dialog), timeout=WAIT)
    assert view.review.final_box.isEnabled() and stored_reviews(qtbot, context) == []


def test_a_reviewer_may_not_sign_as_approved(qtbot, window):
    context = window.context
    sign_in(qtbot, context, "rita", role="reviewer")
    view = open_case(qtbot, window)
    view.review.meaning.setCurrentText("approved")
    view.review.accept()
    dialog = sign(qtbot, window, login="rita")
    answered(qtbot, dialog)
    assert "needs an approver" in dialog.error.text() and dialog.isVisible()
    assert stored_reviews(qtbot, context) == []
    dialog.reject()
    view.review.meaning.setCurrentText("reviewed")
    view.review.accept()
    sign(qtbot, window)
    qtbot.waitUntil(lambda: len(view.state.reviews) == 1, timeout=WAIT)
    assert view.state.reviews[0].signature.role == "reviewer"


# -- roles -------------------------------------------------------------------------------------

def test_only_an_admin_may_activate_a_model(qtbot, ui_context):
    from app.ui.models_dialog import ModelsDialog

    def activations():
        return account_work(qtbot, ui_context, lambda session: list(
            session.store.audit_events(kind="model_activated")))

    manager = ModelsDialog(ui_context)
    qtbot.addWidget(manager)
    qtbot.waitUntil(lambda: manager.table.rowCount() == 1, timeout=WAIT)
    manager.select(manager.records[0].id)
    before = activations()
    manager.activate_selected()
    qtbot.waitUntil(lambda: "Only an admin" in manager.status.text(), timeout=WAIT)
    assert "nobody is signed in" in manager.status.text()
    assert "Admins: admin" in manager.status.text()
    sign_in(qtbot, ui_context, "ann")
    manager.activate_selected()
    qtbot.waitUntil(lambda: "'ann'" in manager.status.text(), timeout=WAIT)
    assert "Only an admin may activate a model" in manager.status.text()
    assert activations() == before


def test_only_an_admin_may_change_alpha_and_delta(qtbot, ui_context):
    from app.ui.settings_dialog import SettingsDialog

    sign_in(qtbot, ui_context, "ann")
    dialog = SettingsDialog(ui_context)
    qtbot.addWidget(dialog)
    dialog.alpha.setValue(0.2)
    assert dialog.save() is not None
    qtbot.waitUntil(lambda: "not saved" in dialog.problems.text(), timeout=WAIT)
    assert "Only an admin may change α, δ" in dialog.problems.text()
    assert not (ui_context.config_dir / SETTINGS_FILE).exists()
    dialog.alpha.setValue(ui_context.settings.alpha)  # other settings need no admin
    dialog.blind.setChecked(True)
    assert dialog.save() is None
    assert ui_context.settings.blind_review


def test_signing_in_names_the_user_on_the_events_of_the_history(qtbot, ui_context):
    add_user(qtbot, ui_context, "ann")
    sign_in(qtbot, ui_context, "ann")
    assert ui_context.store.actor == "ann" and ui_context.actor_name() == "ann"
    ui_context.sign_out()
    qtbot.waitUntil(lambda: ui_context.session.user is None, timeout=WAIT)
    qtbot.waitUntil(lambda: ui_context.store.actor == ui_context.settings.reviewer_name(),
                    timeout=WAIT)


# -- how signatures show -----------------------------------------------------------------------

def review(**changes) -> Review:
    signature = ReviewSignature(user_id=2, login="ann", full_name="Ann Archer", role="approver",
                                key_fingerprint="ab12" * 16, head_id=7, head_hash="c" * 64)
    base = Review(id=3, case_id=1, reviewer="ann", decision="override", label="neutral",
                  reason="relapse", meaning="approved",
                  signed_at="2026-01-02T10:30:05.123456+00:00", case_sha256="ab" * 32,
                  prediction_id=1, supersedes_id=None, signature=signature)
    return replace(base, **changes)


def test_every_kind_of_signature_shows_what_it_is():
    from app.ui.case_trail import reviews_html
    from app.ui.review_panel import review_html, review_line
    from app.ui.signatures import display_name, manifestation

    good = review()
    assert manifestation(good) == ("Signed by Ann Archer (ann, approver) on 2026-01-02 "
                                   "10:30:05 UTC, meaning “approved”: signature verified")
    assert review_line(good).startswith("Overridden → neutral — “relapse”. Signed by")
    bad = review(signature=replace(good.signature, problem="the statement does not match"))
    assert manifestation(bad).endswith("signature NOT verified: the statement does not match")
    assert "color" in review_html(bad) and "color" not in review_html(good)
    old = review(signature=None, recorded_before_accounts=True, reviewer="Dr. Old")
    assert manifestation(old).endswith("unsigned (recorded before accounts)")
    assert "by Dr. Old on" in manifestation(old)
    missing = review(signature=None)
    assert manifestation(missing).endswith("signature missing")

    hostile = review(signature=None, recorded_before_accounts=True,
                     reviewer="Eve\u202eecilA\x1b[2J")
    assert display_name(hostile.reviewer) == "'Eve\\u202eecilA\\u001b[2J'"
    assert "\u202e" not in manifestation(hostile) and "\x1b" not in manifestation(hostile)

    trail = reviews_html([good, bad, old, missing, hostile])
    assert "signature verified" in trail and "signature NOT verified" in trail
    assert "ab12 ab12 ab12 ab12 ab12 ab12 ab12 ab12" in trail  # the key, shortened
    assert "2026-01-02 10:30:05 UTC" in trail
    assert "\u202e" not in trail and trail.count("class='warn'") == 2  # bad and missing
