"""Passwords: Argon2id (argon2-cffi) hashes, a minimum length, nothing else kept.

The parameters are argon2-cffi's defaults, RFC 9106's low-memory profile: time cost 3,
64 MiB, 4 lanes (about 0.12 s to hash or verify on the 2-core reference machine). They are
written into each hash, so raising them later still verifies old hashes (and
``needs_rehash`` says when to re-hash at the next sign-in).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.accounts.errors import AccountError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte of "password" is a denial of service
_HASHER = PasswordHasher()
PARAMETERS = {"algorithm": "argon2id", "time_cost": _HASHER.time_cost,
              "memory_kib": _HASHER.memory_cost, "parallelism": _HASHER.parallelism}


def checked_new_password(password: str, login: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"A password may have at most {MAX_PASSWORD_LENGTH} characters.")
    if password.strip().lower() == login.lower():
        raise AccountError("The password may not be the login id.")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
