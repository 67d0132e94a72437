"""Signing in, the session rules of 21 CFR 11.200(a), roles, and the account operations.

A session starts with the login id and password. Each signing needs the password again;
after ``idle_minutes`` without a signing (or when nothing is signed in) it needs both again.
Every attempt, good or bad, is an audit event; the fifth wrong password in a row locks the
account until an admin resets it. Passwords are checked here and then forgotten: the store
only ever sees the Argon2id hash and the sealed private key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.accounts.errors import (
    AccountDisabled,
    AccountError,
    AccountLocked,
    NotPermitted,
    SessionExpired,
    SignInFailed,
)
from app.accounts.keys import new_key_pair, open_private_key, seal_private_key
from app.accounts.names import checked_full_name, checked_login, checked_role, role_allows, shown
from app.accounts.passwords import checked_new_password, hash_password, password_matches
from app.accounts.statements import Signatory
from app.store.accounts import ADMIN_LOCKOUT, MAX_FAILED_ATTEMPTS, NewKey
from app.store.canonical import utc_now
from app.store.records import Account
from app.store.repository import CaseRepository

DEFAULT_IDLE_MINUTES = 15


@dataclass(frozen=True)
class UserSigner:
    """A user's key, unlocked for one signing (``CaseRepository.review_case``)."""

    signatory: Signatory
    private: Ed25519PrivateKey

    def sign(self, data: bytes) -> str:
        return self.private.sign(data).hex()


def signatory_of(account: Account) -> Signatory:
    return Signatory(account.id, account.login, account.full_name, account.role,
                     account.key_id, account.key_fingerprint)


def authenticate(store: CaseRepository, login: str, password: str) -> Account:
    """The account, if ``password`` is its password; every attempt is an audit event."""
    account = store.account((login or "").strip())
    if account is None:
        store.record_unknown_sign_in()
        raise SignInFailed(f"There is no user {shown(login)}; check the login id.")
    if account.disabled:
        raise AccountDisabled(f"The account '{account.login}' is disabled; ask an admin.")
    if account.locked and account.role == "admin":
        account = store.end_expired_lockout(account.id)
    if account.locked:
        raise AccountLocked(f"The account '{account.login}' is locked after "
                            f"{MAX_FAILED_ATTEMPTS} wrong passwords; {_who_unlocks(account)}")
    credentials = store.credentials(account.id)
    if not password_matches(credentials.password_hash, password):
        after = store.record_attempt(account.id, ok=False)
        if after.locked:
            raise AccountLocked(f"Wrong password. The account '{account.login}' is now "
                                f"locked after {MAX_FAILED_ATTEMPTS} wrong passwords; "
                                f"{_who_unlocks(account)}")
        left = MAX_FAILED_ATTEMPTS - after.failed_attempts
        raise SignInFailed(f"Wrong password for '{account.login}'; {left} attempt(s) left "
                           "before the account locks.")
    return store.record_attempt(account.id, ok=True)


def _who_unlocks(account: Account) -> str:
    if account.role == "admin":
        minutes = int(ADMIN_LOCKOUT.total_seconds() // 60)
        return (f"another admin can reset the password, or try again in {minutes} minutes "
                "(an admin's lockout ends by itself).")
    return "ask an admin to reset your password."


class AccountSession:
    """Who is signed in to one window or one command, and the signing rules."""

    def __init__(self, store: CaseRepository, *, idle_minutes: float = DEFAULT_IDLE_MINUTES,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.idle = timedelta(minutes=idle_minutes)
        self.clock = clock
        self.user: Account | None = None
        self._last_active: datetime | None = None
        self._signed = False  # a signing made since this sign-in (11.200(a)(1)(i))

    # -- signing in ------------------------------------------------------------------------

    def sign_in(self, login: str, password: str) -> Account:
        self.user = authenticate(self.store, login, password)
        self._last_active = self.clock()
        self._signed = False
        return self.user

    def sign_out(self) -> None:
        self.user, self._last_active, self._signed = None, None, False

    def needs_login_to_sign(self) -> bool:
        """True when the next signing needs the login id as well as the password: the first
        signing of a session uses every component of the signature, even right after the
        sign-in (11.200(a)(1)(i)), and so does any after the idle limit."""
        return self.expired() or not self._signed

    def expired(self) -> bool:
        """True when the next signing needs the login id as well as the password."""
        return (self.user is None or self._last_active is None
                or self.clock() - self._last_active > self.idle)

    def touch(self) -> None:
        if self.user is not None:
            self._last_active = self.clock()

    # -- signing ---------------------------------------------------------------------------

    def unlock(self, password: str, login: str | None = None) -> UserSigner:
        """The signed-in user's key for one signing. The first signing of a session, and any
        after the idle limit, need the login id too (11.200(a)(1))."""
        if self.expired():
            if not login:
                raise SessionExpired(
                    "Sign in again: give your login id and password (no signing for more "
                    f"than {self.idle.total_seconds() / 60:g} minutes, or not signed in).")
            self.sign_in(login, password)
        else:
            assert self.user is not None
            if not login and not self._signed:
                raise SessionExpired("Give your login id and password: the first signing of "
                                     "a session needs both.")
            if login and login.strip() != self.user.login:
                raise AccountError(f"Signed in as '{self.user.login}'; sign out first to sign "
                                   "as someone else.")
            self.user = authenticate(self.store, self.user.login, password)
        assert self.user is not None
        credentials = self.store.credentials(self.user.id)
        private = open_private_key(credentials.sealed, password, credentials.public_key)
        self._last_active = self.clock()
        self._signed = True
        return UserSigner(signatory_of(credentials.account), private)

    # -- roles -----------------------------------------------------------------------------

    def require(self, role: str, what: str) -> Account:
        """The signed-in user, if their role allows ``what``; NotPermitted names who may."""
        if self.user is not None and not self.expired() and role_allows(self.user.role, role):
            return self.user
        who = ", ".join(a.login for a in self.store.users()
                        if role_allows(a.role, role) and not a.disabled) or "nobody yet"
        now = ("nobody is signed in" if self.user is None else
               f"'{self.user.login}' has the role {self.user.role}" if not self.expired() else
               "the session expired")
        raise NotPermitted(f"Only an {role} may {what} ({now}). {role.capitalize()}s: {who}.")

    def require_admin_if_accounts(self, what: str) -> Account | None:
        """Admin actions need an admin once the history has accounts; before the first one
        is made there is nobody to ask, and the action is logged under the OS login."""
        if not self.store.has_users():
            return None
        return self.require("admin", what)


# -- account operations ----------------------------------------------------------------------

def _new_key(password: str) -> NewKey:
    pair = new_key_pair()
    return NewKey(pair.public_hex, pair.fingerprint, seal_private_key(pair.private, password))


def create_user(session: AccountSession, login: str, full_name: str, role: str,
                password: str) -> Account:
    """Add a user. The first user of a history needs no sign-in and is always an admin;
    every later one needs a signed-in admin."""
    login = checked_login(login)
    full_name = checked_full_name(full_name)
    role = checked_role(role)
    password = checked_new_password(password, login)
    store = session.store
    if not store.has_users():
        if role != "admin":
            raise AccountError("The first user of a case history is its admin: create them "
                               "with the role admin.")
        return store.create_user(login, full_name, role, hash_password(password),
                                 _new_key(password), actor=login, first_only=True)
    admin = session.require("admin", "create users")
    return store.create_user(login, full_name, role, hash_password(password),
                             _new_key(password), actor=admin.login)


def change_password(session: AccountSession, current: str, new: str) -> Account:
    """The signed-in user changes their own password; their key is sealed again under it."""
    if session.user is None:
        raise SessionExpired("Sign in first to change your password.")
    login = session.user.login
    account = authenticate(session.store, login, current)
    new = checked_new_password(new, login)
    if new == current:
        raise AccountError("The new password is the current one; choose another.")
    credentials = session.store.credentials(account.id)
    private = open_private_key(credentials.sealed, current, credentials.public_key)
    updated = session.store.set_password(account.id, hash_password(new),
                                         seal_private_key(private, new), actor=login)
    session.user = updated
    return updated


def rotate_key(session: AccountSession, password: str) -> Account:
    """The signed-in user replaces their key pair (a suspected copy of the old one, or a
    policy's schedule); signatures made before stay verifiable with the old public key."""
    if session.user is None:
        raise SessionExpired("Sign in first to replace your signing key.")
    account = authenticate(session.store, session.user.login, password)
    updated = session.store.rotate_key(account.id, _new_key(password), actor=account.login)
    session.user = updated
    return updated


def _target(session: AccountSession, login: str) -> Account:
    account = session.store.account(checked_login(login))
    if account is None:
        raise AccountError(f"There is no user {shown(login)}.")
    return account


def reset_password(session: AccountSession, login: str, new: str) -> Account:
    """An admin sets a new password for someone who forgot theirs or is locked out; they get
    a new key (the old one cannot be opened without the old password) and are unlocked."""
    admin = session.require("admin", "reset passwords")
    account = _target(session, login)
    new = checked_new_password(new, account.login)
    return session.store.reset_password(account.id, hash_password(new), _new_key(new),
                                        actor=admin.login)


def set_disabled(session: AccountSession, login: str, disabled: bool) -> Account:
    admin = session.require("admin", "disable or enable users")
    account = _target(session, login)
    if disabled and account.role == "admin" and session.store.admins_left(account.id) == 0:
        raise AccountError(f"'{account.login}' is the last enabled admin; make another admin "
                           "first, or nobody could manage the accounts.")
    return session.store.set_disabled(account.id, disabled, actor=admin.login)
