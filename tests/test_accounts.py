"""Accounts: Argon2id passwords, Ed25519 keys sealed under them, lockout, roles and the
session rules of 21 CFR 11.200(a). Real store (SQLite and PostgreSQL), real argon2-cffi, real
cryptography."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta

import pytest

from app.accounts.errors import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    DamagedKey,
    NotPermitted,
    SessionExpired,
    SignInFailed,
)
from app.accounts.installation import installation_key
from app.accounts.service import (
    AccountSession,
    change_password,
    create_user,
    reset_password,
    set_disabled,
)
from app.store import open_store
from app.store.canonical import utc_now
from tests.helpers.accounts import PASSWORD, admin_session, signer, user
from tests.helpers.raw_sql import dialect_of, everything_stored, raw_sql
from tests.store_helpers import prediction

pytestmark = pytest.mark.both_backends

OTHER = "a different long passphrase"


def scored(store, text: str = "Rash after the new drug.") -> int:
    return store.add_case(text, prediction=prediction()).case_id


def test_the_first_user_is_the_admin_and_needs_no_sign_in(store):
    session = AccountSession(store)
    with pytest.raises(AccountError, match=r"first user .* is its admin"):
        create_user(session, "ann", "Ann Archer", "reviewer", PASSWORD)
    admin = create_user(session, "ada", "Ada Admin", "admin", PASSWORD)
    assert (admin.role, admin.locked, len(admin.key_fingerprint)) == ("admin", False, 64)
    # the second needs a signed-in admin
    with pytest.raises(NotPermitted, match=r"Only an admin may create users .*Admins: ada"):
        create_user(AccountSession(store), "bob", "Bob Baker", "reviewer", PASSWORD)
    session.sign_in("ada", PASSWORD)
    assert create_user(session, "bob", "Bob Baker", "reviewer", PASSWORD).role == "reviewer"
    kinds = [e.kind for e in store.audit_events()]
    assert kinds == ["user_created", "key_created", "sign_in", "user_created", "key_created"]


def test_a_reviewer_may_not_create_users_and_is_told_who_may(store):
    user(store, "ann", "reviewer")
    session = AccountSession(store)
    session.sign_in("ann", PASSWORD)
    with pytest.raises(NotPermitted, match=r"'ann' has the role reviewer.*Admins: admin"):
        create_user(session, "eve", "Eve Evans", "admin", PASSWORD)


@pytest.mark.parametrize(("login", "full_name", "message"), [
    ("ann\x1b[31m", "Ann", "login id"),
    ("Ann", "Ann", "login id"),  # upper case: ids are compared exactly, so one spelling
    ("a", "Ann", "login id"),
    ("ann", "Ann \x1b[2J Archer", "control or invisible"),
    ("ann", "Ann\u202eArcher", "control or invisible"),  # right-to-left override
    ("ann", "Ann\u200bArcher", "control or invisible"),  # zero-width space
    ("ann", "   ", "full name"),
])
def test_names_with_control_characters_are_refused_and_shown_escaped(store, login, full_name,
                                                                     message):
    session = admin_session(store)
    with pytest.raises(AccountError, match=message) as caught:
        create_user(session, login, full_name, "reviewer", PASSWORD)
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)


def test_a_password_has_a_minimum_length(store):
    with pytest.raises(AccountError, match="at least 12 characters"):
        create_user(AccountSession(store), "ada", "Ada Admin", "admin", "short")
    with pytest.raises(AccountError, match="may not be the login id"):
        create_user(AccountSession(store), "adaadaadaada", "Ada", "admin", "adaadaadaada")


def test_wrong_passwords_are_counted_and_the_fifth_locks(store):
    user(store, "ann")
    session = AccountSession(store)
    for left in (4, 3, 2, 1):
        with pytest.raises(SignInFailed, match=f"Wrong password for 'ann'; {left} attempt"):
            session.sign_in("ann", "not the password")
    with pytest.raises(AccountLocked, match="now locked after 5 wrong passwords"):
        session.sign_in("ann", "not the password")
    with pytest.raises(AccountLocked, match="ask an admin"):
        session.sign_in("ann", PASSWORD)  # the right password no longer opens it
    assert store.account("ann").locked
    kinds = [e.kind for e in store.audit_events(after_id=0)][-6:]
    assert kinds == ["sign_in_failed"] * 5 + ["account_locked"]


def test_a_locked_admin_is_unlocked_after_half_an_hour_and_the_history_says_so(store, history):
    """Five wrong passwords anyone can type must not leave a history nobody can administer:
    an admin's lockout ends after 30 minutes (a reviewer's waits for an admin)."""
    admin_session(store)  # the first user, "admin"
    user(store, "ann")
    for login in ("admin", "ann"):
        for _ in range(5):
            with pytest.raises((SignInFailed, AccountLocked)):
                AccountSession(store).sign_in(login, "not the password at all")
    with pytest.raises(AccountLocked, match="try again in 30 minutes"):
        AccountSession(store).sign_in("admin", PASSWORD)
    # Half an hour passes (the lock's time moved back behind the app's back).
    long_ago = utc_now() - timedelta(minutes=31)
    stored = long_ago.replace(tzinfo=None).isoformat(" ") \
        if dialect_of(history) == "sqlite" else long_ago.isoformat()
    raw_sql(history, f"UPDATE user_state SET updated = '{stored}'")
    assert AccountSession(store).sign_in("admin", PASSWORD).login == "admin"
    with pytest.raises(AccountLocked, match="ask an admin"):
        AccountSession(store).sign_in("ann", PASSWORD)
    unlocked = [e for e in store.audit_events(after_id=0) if e.kind == "account_unlocked"]
    assert [e.payload["user"]["login"] for e in unlocked] == ["admin"]
    assert store.verify_chain().ok


def test_an_admin_reset_unlocks_with_a_new_key_and_old_signatures_still_verify(store):
    ann = signer(store, "ann")
    case_id = scored(store)
    before = store.add_review(case_id, ann, "accept")
    old_key = store.account("ann").key_fingerprint
    for _ in range(5):
        with pytest.raises((SignInFailed, AccountLocked)):
            AccountSession(store).sign_in("ann", "wrong wrong wrong")
    reset_password(admin_session(store), "ann", OTHER)
    account = store.account("ann")
    assert not account.locked and account.key_fingerprint != old_key
    session = AccountSession(store)
    after = store.add_review(case_id, session.unlock(OTHER, "ann"), "defer")
    reviews = store.get_case(case_id).reviews
    assert [r.signature.verified for r in reviews] == [True, True]
    assert reviews[0].signature.key_fingerprint == old_key == before.signature.key_fingerprint
    assert after.signature.key_fingerprint == account.key_fingerprint
    result = store.verify_chain()
    assert result.ok and result.signatures == 2


def test_the_old_key_cannot_sign_after_a_reset(store):
    ann = signer(store, "ann")
    reset_password(admin_session(store), "ann", OTHER)
    with pytest.raises(AccountError, match="key was replaced"):
        store.add_review(scored(store), ann, "defer")


def test_changing_a_password_reseals_the_same_key(store):
    user(store, "ann")
    session = AccountSession(store)
    session.sign_in("ann", PASSWORD)
    key = store.account("ann").key_fingerprint
    change_password(session, PASSWORD, OTHER)
    with pytest.raises(SignInFailed):
        AccountSession(store).sign_in("ann", PASSWORD)
    signer_after = AccountSession(store).unlock(OTHER, "ann")
    assert signer_after.signatory.fingerprint == key == store.account("ann").key_fingerprint
    assert store.add_review(scored(store), signer_after, "defer").signature.verified


def test_a_disabled_account_cannot_sign_in_or_sign(store):
    ann = signer(store, "ann")
    set_disabled(admin_session(store), "ann", True)
    with pytest.raises(AccountDisabled):
        AccountSession(store).sign_in("ann", PASSWORD)
    with pytest.raises(AccountDisabled):
        store.add_review(scored(store), ann, "defer")  # an unlocked key stops working too
    set_disabled(admin_session(store), "ann", False)
    assert store.add_review(scored(store), ann, "defer").signature.verified


def test_the_last_admin_cannot_be_disabled(store):
    session = admin_session(store)
    with pytest.raises(AccountError, match="last enabled admin"):
        set_disabled(session, "admin", True)


def test_an_unknown_user_is_refused_and_what_was_typed_is_not_kept(store, history):
    admin_session(store)
    typed = "my-secret-passphrase-typed-in-the-login-field"
    with pytest.raises(SignInFailed, match="There is no user"):
        AccountSession(store).sign_in(typed, PASSWORD)
    event = store.audit_events(kind="sign_in_failed")[-1]
    assert event.payload == {"user": None, "reason": "unknown login id"}
    assert typed.encode() not in everything_stored(history)


def test_no_password_is_ever_stored_in_clear(store, history):
    ann = signer(store, "ann")
    store.add_review(scored(store), ann, "accept")
    reset_password(admin_session(store), "ann", OTHER)
    store.close()
    data = everything_stored(history)
    assert PASSWORD.encode() not in data and OTHER.encode() not in data
    assert b"$argon2id$" in data  # the hashes are there, and only they


def test_a_session_expires_after_the_idle_limit(store):
    user(store, "ann")
    now = [utc_now()]
    session = AccountSession(store, idle_minutes=15, clock=lambda: now[0])
    with pytest.raises(SessionExpired, match="login id and password"):
        session.unlock(PASSWORD)  # the first signing of a session needs both
    session.unlock(PASSWORD, "ann")
    now[0] += timedelta(minutes=10)
    session.unlock(PASSWORD)  # within the session: the password alone
    now[0] += timedelta(minutes=16)
    assert session.expired()
    with pytest.raises(SessionExpired):
        session.unlock(PASSWORD)
    with pytest.raises(NotPermitted, match="the session expired"):
        session.require("reviewer", "sign")
    assert session.unlock(PASSWORD, "ann").signatory.login == "ann"


def test_the_first_signing_after_a_sign_in_needs_the_login_id_too(store):
    """21 CFR 11.200(a)(1)(i): the first signing of a session uses every component of the
    signature, even right after the sign-in; later ones the password alone."""
    user(store, "ann")
    session = AccountSession(store)
    session.sign_in("ann", PASSWORD)
    assert session.needs_login_to_sign() and not session.expired()
    with pytest.raises(SessionExpired, match="first signing of a session needs both"):
        session.unlock(PASSWORD)
    session.unlock(PASSWORD, "ann")
    assert not session.needs_login_to_sign()
    assert session.unlock(PASSWORD).signatory.login == "ann"
    session.sign_in("ann", PASSWORD)  # a new session
    assert session.needs_login_to_sign()


def test_a_signed_in_session_does_not_sign_as_someone_else(store):
    user(store, "ann")
    user(store, "bob")
    session = AccountSession(store)
    session.sign_in("ann", PASSWORD)
    with pytest.raises(AccountError, match="Signed in as 'ann'"):
        session.unlock(PASSWORD, "bob")


def test_a_damaged_private_key_is_named(store, history):
    user(store, "ann")
    key_id = store.account("ann").key_id
    sealed = raw_sql(history, f"SELECT sealed FROM key_secrets WHERE key_id = {key_id}")[0][0]
    broken = sealed.replace('"sealed":"', '"sealed":"AAAA', 1)
    raw_sql(history, "UPDATE key_secrets SET sealed = :broken WHERE key_id = :key",
            params={"broken": broken, "key": key_id})
    with pytest.raises(DamagedKey, match=r"damaged .* reset your password"):
        AccountSession(store).unlock(PASSWORD, "ann")


def test_only_an_approver_signs_approved(store):
    reviewer = signer(store, "ann", role="reviewer")
    with pytest.raises(NotPermitted, match="needs an approver"):
        store.add_review(scored(store), reviewer, "accept", meaning="approved")
    approver = signer(store, "bob", role="approver")
    assert store.add_review(scored(store), approver, "accept", meaning="approved").signature


def test_two_windows_signed_in_as_the_same_user_both_sign(store, history):
    """Two windows are two connections to the file, each with its own session, signing at
    the same time: every signature lands on the one chain and verifies."""
    user(store, "ann")
    ids = [scored(store, f"Case {i} for two windows.") for i in range(6)]
    windows = [open_store(history, actor="ann", busy_timeout=10.0) for _ in range(2)]
    signers = [AccountSession(w).unlock(PASSWORD, "ann") for w in windows]
    errors: list[BaseException] = []

    def sign(which: int) -> None:
        try:
            for case_id in ids[which::2]:
                windows[which].add_review(case_id, signers[which], "defer")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for window in windows:
        window.close()
    assert not errors
    result = store.verify_chain()
    assert result.ok and result.signatures == 6


def test_a_history_moved_to_another_machine_still_verifies(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    with open_store(here / "casewise.db") as store:
        store.set_anchor(installation_key(here / "config"))
        store.add_review(scored(store), signer(store, "ann"), "accept")
    shutil.copy(here / "casewise.db", tmp_path / "moved.db")
    with open_store(tmp_path / "moved.db") as moved:
        result = moved.verify_chain()  # the checkpoint made at close verifies here too
        assert result.ok and result.signatures == 1 and result.unanchored_events == 0
        moved.set_anchor(installation_key(there / "config"))  # another installation
        moved.checkpoint("test")
        assert moved.verify_chain().ok
        (review,) = moved.get_case(1).reviews
        assert review.signature.verified and review.signature.full_name == "Ann Archer"


def test_a_key_rotation_keeps_the_old_key_for_what_it_signed(store):
    from app.accounts.service import rotate_key

    ann = signer(store, "ann")
    before = store.add_review(scored(store), ann, "accept")
    session = AccountSession(store)
    session.sign_in("ann", PASSWORD)
    rotated = rotate_key(session, PASSWORD)
    assert rotated.key_fingerprint != before.signature.key_fingerprint
    with pytest.raises(AccountError, match="key was replaced"):
        store.add_review(scored(store, "Another case."), ann, "defer")  # the old key
    after = store.add_review(scored(store, "A third case."), session.unlock(PASSWORD, "ann"),
                             "defer")
    assert after.signature.key_fingerprint == rotated.key_fingerprint
    result = store.verify_chain()
    assert result.ok and result.signatures == 2
    assert store.audit_events(kind="key_rotated")[-1].payload["old_key_fingerprint"] == \
        before.signature.key_fingerprint
