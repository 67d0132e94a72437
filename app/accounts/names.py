"""What a login id and a printed name may contain.

A name shows in a terminal, in the window and in a PDF that a regulator reads: control
characters, terminal escape codes and invisible formatting characters (bidi overrides,
zero-width joiners) could make it print as someone else's, so they are refused, not cleaned.
"""

from __future__ import annotations

import re
import unicodedata

from app.accounts.errors import AccountError

LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MAX_NAME_LENGTH = 200
ROLES = ("reviewer", "approver", "admin")  # each includes what the one before may do


def checked_login(login: str) -> str:
    value = (login or "").strip()
    if not LOGIN_PATTERN.fullmatch(value):
        raise AccountError(
            f"The login id {shown(value)} is not allowed: use 2 to 64 lower-case letters, "
            "digits, '.', '_' or '-', starting with a letter or digit.")
    return value


def checked_full_name(name: str) -> str:
    value = unicodedata.normalize("NFC", (name or "").strip())
    if not value:
        raise AccountError("A user needs the full name that is printed with their signature.")
    if len(value) > MAX_NAME_LENGTH:
        raise AccountError(f"The full name is longer than {MAX_NAME_LENGTH} characters.")
    bad = [ch for ch in value if _invisible(ch)]
    if bad:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(bad))
        raise AccountError(f"The full name {shown(value)} contains control or invisible "
                           f"characters ({codes}); type the name as it should be printed.")
    return value


def checked_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"The role must be one of {', '.join(ROLES)}, not {shown(role)}.")
    return role


def role_allows(role: str, needed: str) -> bool:
    """Roles are ordered: an admin may do what an approver may, an approver what a reviewer may."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _invisible(ch: str) -> bool:
    # Cc: C0/C1 controls incl. ESC; Cf: format (bidi overrides, zero-width); Zl/Zp: separators.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn")


def escaped(value: object) -> str:
    """The text with every control or invisible character written as ``\\uXXXX``, so a
    hostile name cannot carry an escape code to the terminal, the window or a PDF."""
    return "".join(f"\\u{ord(ch):04x}" if _invisible(ch) else ch for ch in str(value))


def shown(value: object) -> str:
    """``escaped``, quoted: a value named in a message."""
    return f"'{escaped(value)}'"
