"""Accounts, keys, signatures and checkpoints inside a write transaction the repository
opened: each change is rows plus the audit events that record it, committed together.

Passwords are never seen here: the store keeps the Argon2id hash it is given and the sealed
private key (``app.accounts`` makes both). Events never carry either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.errors import AccountDisabled, AccountError, AccountLocked, NotPermitted
from app.accounts.names import role_allows
from app.accounts.statements import Signatory, StatementSigner, checkpoint_statement
from app.store import audit
from app.store.canonical import iso
from app.store.records import Account
from app.store.schema import (
    CheckpointRow,
    KeySecretRow,
    SigningKeyRow,
    UserRow,
    UserStateRow,
)

MAX_FAILED_ATTEMPTS = 5
# An admin's lockout ends by itself after this long: five wrong passwords, which anyone can
# type, must not leave a history that nobody can administer (other roles wait for an admin).
ADMIN_LOCKOUT = timedelta(minutes=30)
# Events that set a user's role and disabled flag; the latest must match user_state.
STATE_EVENTS = ("user_created", "user_disabled", "user_enabled")


@dataclass(frozen=True)
class NewKey:
    public_key: str  # hex
    fingerprint: str
    sealed: dict[str, Any] | None  # the private key under the password; None: installation


@dataclass(frozen=True)
class Credentials:
    """What checking a password and opening a key need; stays between store and accounts."""

    account: Account
    password_hash: str
    public_key: str
    sealed: dict[str, Any]


def _state_payload(user: UserRow, state: UserStateRow) -> dict[str, Any]:
    return {"user": {"id": user.id, "login": user.login},
            "state": {"role": state.role, "disabled": state.disabled}}


def current_key(session: Session, user_id: int) -> SigningKeyRow:
    return session.scalars(select(SigningKeyRow).where(SigningKeyRow.user_id == user_id)
                           .order_by(SigningKeyRow.created.desc(), SigningKeyRow.id.desc())
                           .limit(1)).one()


def account_of(session: Session, user: UserRow) -> Account:
    state = session.get(UserStateRow, user.id)
    key = current_key(session, user.id)
    return Account(user.id, user.login, user.full_name, state.role, state.disabled,
                   state.failed_attempts, state.failed_attempts >= MAX_FAILED_ATTEMPTS,
                   iso(user.created), key.id, key.fingerprint)


def user_by_login(session: Session, login: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.login == login))


def has_users(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(UserRow)) or 0) > 0


def add_key(tx: Any, user_id: int | None, label: str, key: NewKey) -> SigningKeyRow:
    row = tx.add(SigningKeyRow(user_id=user_id, label=label, public_key=key.public_key,
                               fingerprint=key.fingerprint, created=tx.now))
    if key.sealed is not None:
        tx.session.add(KeySecretRow(key_id=row.id, sealed=key.sealed))
    tx.log("key_created", {"record": audit.cite(row), "user_id": user_id, "label": label,
                           "fingerprint": key.fingerprint})
    return row


def create_user(tx: Any, login: str, full_name: str, role: str, password_hash: str,
                key: NewKey) -> Account:
    if user_by_login(tx.session, login) is not None:
        raise AccountError(f"There is already a user '{login}'; choose another login id.")
    user = tx.add(UserRow(login=login, full_name=full_name, created=tx.now))
    state = UserStateRow(user_id=user.id, role=role, disabled=False, failed_attempts=0,
                         password_hash=password_hash, updated=tx.now)
    tx.session.add(state)
    tx.log("user_created", {"record": audit.cite(user), "full_name": full_name,
                            **_state_payload(user, state)})
    add_key(tx, user.id, f"{login}'s signing key", key)
    return account_of(tx.session, user)


def require_user(session: Session, user_id: int) -> tuple[UserRow, UserStateRow]:
    user, state = session.get(UserRow, user_id), session.get(UserStateRow, user_id)
    if user is None or state is None:
        raise AccountError(f"There is no user {user_id} in the case history.")
    return user, state


def record_attempt(tx: Any, user_id: int, ok: bool) -> Account:
    """Count a sign-in (or signing) attempt: success resets the count, the fifth failure in a
    row locks the account. Both are audit events; the password is in neither."""
    user, state = require_user(tx.session, user_id)
    if ok:
        state.failed_attempts = 0
        tx.log("sign_in", {"user": {"id": user.id, "login": user.login}}, actor=user.login)
    else:
        state.failed_attempts += 1
        tx.log("sign_in_failed", {"user": {"id": user.id, "login": user.login},
                                  "reason": "wrong password",
                                  "failed_attempts": state.failed_attempts}, actor=user.login)
        if state.failed_attempts == MAX_FAILED_ATTEMPTS:
            tx.log("account_locked", {"user": {"id": user.id, "login": user.login},
                                      "after_failed_attempts": MAX_FAILED_ATTEMPTS},
                   actor=user.login)
    state.updated = tx.now
    return account_of(tx.session, user)


def end_expired_lockout(tx: Any, user_id: int) -> Account:
    """Unlock an admin locked for ``ADMIN_LOCKOUT`` or longer (an audit event says so and
    why); any other account, or a recent lockout, is left as it is."""
    user, state = require_user(tx.session, user_id)
    locked_for = tx.now - _aware(state.updated)
    if (state.failed_attempts >= MAX_FAILED_ATTEMPTS and state.role == "admin"
            and locked_for >= ADMIN_LOCKOUT):
        state.failed_attempts, state.updated = 0, tx.now
        minutes = int(ADMIN_LOCKOUT.total_seconds() // 60)
        tx.log("account_unlocked", {"user": {"id": user.id, "login": user.login},
                                    "reason": f"an admin's lockout ends after {minutes} "
                                              "minutes"}, actor=user.login)
    return account_of(tx.session, user)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def set_password(tx: Any, user_id: int, password_hash: str, sealed: dict[str, Any]) -> Account:
    """The user's own change: the same key, sealed again under the new password."""
    user, state = require_user(tx.session, user_id)
    key = current_key(tx.session, user_id)
    secret = tx.session.get(KeySecretRow, key.id)
    secret.sealed = sealed
    state.password_hash, state.updated = password_hash, tx.now
    tx.log("password_changed", {"user": {"id": user.id, "login": user.login},
                                "key_fingerprint": key.fingerprint})
    return account_of(tx.session, user)


def reset_password(tx: Any, user_id: int, password_hash: str, key: NewKey) -> Account:
    """An admin's reset: nobody knows the old password, so the old key cannot be opened; the
    user gets a new key (the old one stays, to verify what it signed) and is unlocked."""
    user, state = require_user(tx.session, user_id)
    state.password_hash, state.failed_attempts, state.updated = password_hash, 0, tx.now
    row = add_key(tx, user.id, f"{user.login}'s signing key", key)
    tx.log("password_reset", {"user": {"id": user.id, "login": user.login},
                              "new_key_fingerprint": row.fingerprint})
    return account_of(tx.session, user)


def rotate_key(tx: Any, user_id: int, key: NewKey) -> Account:
    """The user's own new key pair (sealed under their password); the old public key stays,
    valid for what it signed before this moment."""
    user, state = require_user(tx.session, user_id)
    old = current_key(tx.session, user_id)
    row = add_key(tx, user.id, f"{user.login}'s signing key", key)
    state.updated = tx.now
    tx.log("key_rotated", {"user": {"id": user.id, "login": user.login},
                           "old_key_fingerprint": old.fingerprint,
                           "new_key_fingerprint": row.fingerprint})
    return account_of(tx.session, user)


def set_disabled(tx: Any, user_id: int, disabled: bool) -> Account:
    user, state = require_user(tx.session, user_id)
    state.disabled, state.updated = disabled, tx.now
    tx.log("user_disabled" if disabled else "user_enabled", _state_payload(user, state))
    return account_of(tx.session, user)


def check_signer(session: Session, signatory: Signatory, meaning: str) -> None:
    """The signer, as the history holds them now, may sign with this meaning: the account is
    enabled and unlocked, the key is their current one, and the role allows it."""
    user, state = require_user(session, signatory.user_id)
    if state.disabled:
        raise AccountDisabled(f"The account '{user.login}' is disabled; it cannot sign.")
    if state.failed_attempts >= MAX_FAILED_ATTEMPTS:
        raise AccountLocked(f"The account '{user.login}' is locked; an admin must reset it.")
    if (user.login, user.full_name, state.role) != (signatory.login, signatory.full_name,
                                                    signatory.role):
        raise AccountError("Your account changed since you signed in; sign in again.")
    if current_key(session, user.id).id != signatory.key_id:
        raise AccountError("Your signing key was replaced since you signed in; sign in again.")
    if meaning == "approved" and not role_allows(state.role, "approver"):
        raise NotPermitted(f"Signing with the meaning 'approved' needs an approver (or admin); "
                           f"'{user.login}' is a {state.role}. Sign as 'reviewed', or ask an "
                           "approver.")


def key_id_of(session: Session, public_key: str) -> int | None:
    return session.scalar(select(SigningKeyRow.id).where(SigningKeyRow.public_key == public_key))


def installation_key_id(tx: Any, label: str, key: NewKey) -> int:
    """The key row of this installation's key, registered on first use."""
    found = key_id_of(tx.session, key.public_key)
    return found if found is not None else add_key(tx, None, label, key).id


def add_checkpoint(tx: Any, signer: StatementSigner, reason: str) -> CheckpointRow | None:
    """Sign the chain head as it is now (None when the chain is empty or already anchored
    there)."""
    last = audit.head(tx.session)
    if last is None:
        return None
    anchored = tx.session.scalar(select(func.max(CheckpointRow.event_id)))
    if anchored is not None and anchored >= last[0]:
        return None
    signed_at = iso(tx.now)
    statement = checkpoint_statement(last[0], last[1], signed_at, reason,
                                     signer.signatory.fingerprint)
    return tx.add(CheckpointRow(event_id=last[0], event_hash=last[1],
                                key_id=signer.signatory.key_id, signed_at=signed_at,
                                reason=reason, signature=signer.sign(statement)))
