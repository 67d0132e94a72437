"""Account faults a user can act on; each message says what to do.

``CasewiseError``s, so the CLI prints them as one line; not store errors, because they are
about who may do what, not about the history file.
"""

from __future__ import annotations

from models.errors import CasewiseError


class AccountError(CasewiseError):
    """Refused: bad input, or the account may not do this. The message says why."""


class SignInFailed(AccountError):
    """Unknown login id or wrong password (counted); deliberately the same message for both."""


class AccountLocked(AccountError):
    """Too many failed attempts; an admin must reset the password."""


class AccountDisabled(AccountError):
    """An admin disabled the account."""


class SessionExpired(AccountError):
    """Idle too long (or never signed in): the login id and password are needed again."""


class NotPermitted(AccountError):
    """The signed-in user's role does not allow this; the message says which role does."""


class DamagedKey(AccountError):
    """The stored private key does not decrypt although the password is right."""
