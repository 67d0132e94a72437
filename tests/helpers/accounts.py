"""Real accounts for tests: users made through ``app.accounts`` (Argon2id, Ed25519, the
private key sealed under the password), unlocked with their password. Nothing is mocked;
each user costs about a quarter of a second (two Argon2id runs), so signers are kept per
store and login.
"""

from __future__ import annotations

from app.accounts.service import AccountSession, UserSigner, create_user
from app.store import CaseRepository

PASSWORD = "correct horse battery staple"
ADMIN = "admin"


def _names(login: str) -> str:
    return {"ann": "Ann Archer", "bob": "Bob Baker", "cleo": "Cleo Carter",
            ADMIN: "Ada Admin"}.get(login, login.capitalize())


def admin_session(store: CaseRepository) -> AccountSession:
    """A session signed in as the history's admin (created first when it has no users)."""
    cached = getattr(store, "_test_admin_session", None)
    if cached is not None:
        return cached
    session = AccountSession(store)
    if store.account(ADMIN) is None:
        create_user(session, ADMIN, _names(ADMIN), "admin", PASSWORD)
    session.sign_in(ADMIN, PASSWORD)
    store._test_admin_session = session  # type: ignore[attr-defined]
    return session


def user(store: CaseRepository, login: str, role: str = "approver",
         full_name: str | None = None) -> None:
    """Make sure ``login`` exists (approver by default: tests sign both meanings)."""
    session = admin_session(store)
    if store.account(login) is None:
        create_user(session, login, full_name or _names(login), role, PASSWORD)


def signer(store: CaseRepository, login: str = "ann", role: str = "approver",
           full_name: str | None = None) -> UserSigner:
    """``login``'s key, unlocked with the password, as a review needs it."""
    cache = store.__dict__.setdefault("_test_signers", {})
    if login not in cache:
        if login != ADMIN:
            user(store, login, role, full_name)
        else:
            admin_session(store)
        cache[login] = AccountSession(store).unlock(PASSWORD, login)
    return cache[login]
