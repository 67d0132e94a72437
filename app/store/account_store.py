"""The repository's account, signing and checkpoint methods (a mixin of ``CaseRepository``).

Each method is one transaction with its audit events. Who may call what is decided in
``app.accounts.service``; these methods only keep the rows and the trail right.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.errors import AccountError
from app.accounts.installation import InstallationKey, InstallationSigner
from app.store import accounts, audit
from app.store.accounts import Credentials, NewKey
from app.store.records import Account
from app.store.schema import CheckpointRow, KeySecretRow, UserRow, UserStateRow

CHECKPOINT_EVERY = 1000  # events between signed checkpoints (also: at close, before export)


class AccountStore:
    """Needs ``_txn()`` and ``_transaction(write)`` from the repository."""

    _txn: Any
    _transaction: Any
    _anchor: InstallationSigner | None = None
    _anchored_to: int | None = None
    checkpoint_every: int = CHECKPOINT_EVERY

    # -- accounts --------------------------------------------------------------------------

    def has_users(self) -> bool:
        with self._transaction(write=False) as session:
            return accounts.has_users(session)

    def users(self) -> tuple[Account, ...]:
        with self._transaction(write=False) as session:
            rows = session.scalars(select(UserRow).order_by(UserRow.id))
            return tuple(accounts.account_of(session, row) for row in rows)

    def account(self, login: str) -> Account | None:
        with self._transaction(write=False) as session:
            row = accounts.user_by_login(session, login)
            return None if row is None else accounts.account_of(session, row)

    def credentials(self, user_id: int) -> Credentials:
        """The password hash and sealed key of a user: for ``app.accounts`` only."""
        with self._transaction(write=False) as session:
            user, state = accounts.require_user(session, user_id)
            key = accounts.current_key(session, user_id)
            secret = session.get(KeySecretRow, key.id)
            if secret is None:
                raise AccountError(f"The signing key of '{user.login}' is missing from the "
                                   "history; an admin must reset the password.")
            return Credentials(accounts.account_of(session, user), state.password_hash,
                               key.public_key, secret.sealed)

    def create_user(self, login: str, full_name: str, role: str, password_hash: str,
                    key: NewKey, *, actor: str, first_only: bool = False) -> Account:
        """Add a user. ``first_only``: refuse if any user exists (creating the first admin
        needs no sign-in, so it must not be a way around one)."""
        with self._txn() as tx:
            if first_only and accounts.has_users(tx.session):
                raise AccountError("Users exist already: an admin must sign in to add one.")
            return accounts.create_user(_as(tx, actor), login, full_name, role,
                                        password_hash, key)

    def record_attempt(self, user_id: int, ok: bool) -> Account:
        with self._txn() as tx:
            return accounts.record_attempt(tx, user_id, ok)

    def end_expired_lockout(self, user_id: int) -> Account:
        with self._txn() as tx:
            return accounts.end_expired_lockout(tx, user_id)

    def record_unknown_sign_in(self) -> None:
        """A sign-in with a login id nobody has. The text typed is not kept: it is often a
        password typed into the wrong field."""
        with self._txn() as tx:
            tx.log("sign_in_failed", {"user": None, "reason": "unknown login id"},
                   actor="unknown")

    def set_password(self, user_id: int, password_hash: str, sealed: dict[str, Any], *,
                     actor: str) -> Account:
        with self._txn() as tx:
            return accounts.set_password(_as(tx, actor), user_id, password_hash, sealed)

    def reset_password(self, user_id: int, password_hash: str, key: NewKey, *,
                       actor: str) -> Account:
        with self._txn() as tx:
            return accounts.reset_password(_as(tx, actor), user_id, password_hash, key)

    def rotate_key(self, user_id: int, key: NewKey, *, actor: str) -> Account:
        with self._txn() as tx:
            return accounts.rotate_key(_as(tx, actor), user_id, key)

    def set_disabled(self, user_id: int, disabled: bool, *, actor: str) -> Account:
        with self._txn() as tx:
            return accounts.set_disabled(_as(tx, actor), user_id, disabled)

    def admins_left(self, excluding: int) -> int:
        with self._transaction(write=False) as session:
            rows = session.execute(select(UserStateRow.user_id).where(
                UserStateRow.role == "admin", UserStateRow.disabled.is_(False),
                UserStateRow.user_id != excluding)).all()
            return len(rows)

    # -- checkpoints -----------------------------------------------------------------------

    def set_anchor(self, key: InstallationKey) -> None:
        """Sign checkpoints with this installation's key from now on (registering it in the
        history on first use): at ``close``, before exports and every ``checkpoint_every``
        events."""
        with self._transaction(write=False) as session:  # known already: no write at all
            key_id = accounts.key_id_of(session, key.public_key)
            self._anchored_to = session.scalar(select(CheckpointRow.event_id)
                                               .order_by(CheckpointRow.id.desc()).limit(1))
        if key_id is None:
            with self._txn() as tx:
                key_id = accounts.installation_key_id(
                    _as(tx, "installation"), key.label,
                    NewKey(key.public_key, key.fingerprint, None))
        self._anchor = key.signer(key_id)

    def checkpoint(self, reason: str) -> tuple[int, str] | None:
        """Sign the chain head now; returns the (event id, hash) anchored, or None when there
        is no key set or nothing new to anchor."""
        if self._anchor is None:
            return None
        with self._txn() as tx:
            row = accounts.add_checkpoint(tx, self._anchor, reason)
            if row is None:  # anchored already (perhaps by another process): say so here
                self._anchored_to = tx.session.scalar(select(func.max(CheckpointRow.event_id)))
                return None
            self._anchored_to = row.event_id
            return row.event_id, row.event_hash

    def _checkpoint_due(self, session: Session) -> bool:
        """Inside a write: whether ``checkpoint_every`` events passed since the last anchor."""
        if self._anchor is None:
            return False
        last = audit.head(session)
        return bool(last) and last[0] - (self._anchored_to or 0) >= self.checkpoint_every


def _as(tx: Any, actor: str) -> Any:
    """The transaction with another actor on its events: the admin who acts, not the OS
    login the store was opened with."""
    return replace(tx, actor=actor)
