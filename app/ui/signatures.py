"""How a signature shows in the window (21 CFR 11.50): the signer's printed name, the date and
time with its zone, what the signature means, and whether it verifies.

Plain text from the typed ``Review`` records (no Qt), shared by the review panel and the case
trail, so both say the same thing the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The wording is the core's, so the window, the terminal and the PDF say the same thing.
from app.accounts.manifestation import (
    BEFORE_ACCOUNTS,
    MISSING,
    VERIFIED,
    display_name,
    printed_name,
)
from app.accounts.manifestation import signed_when as signed_time
from app.accounts.manifestation import trusted as signature_trusted
from app.accounts.manifestation import verdict as signature_status

if TYPE_CHECKING:
    from app.store.records import Account, Review

__all__ = ["BEFORE_ACCOUNTS", "MISSING", "VERIFIED", "account_text", "key_text",
           "manifestation", "printed_name", "signature_status", "signature_trusted",
           "signed_time", "signer_text"]


def signer_text(review: Review) -> str:
    """``Ann Archer (ann, approver)``, or the typed name alone for an unsigned review."""
    signature = review.signature
    if signature is None:
        return printed_name(review)
    return (f"{printed_name(review)} ({display_name(signature.login)}, "
            f"{display_name(signature.role)})")


def key_text(review: Review) -> str:
    """The signing key's fingerprint, shortened (the first 16 bytes) for a line of text."""
    from app.accounts.keys import short_fingerprint  # cryptography: not before the window

    signature = review.signature
    return short_fingerprint(signature.key_fingerprint) if signature else "—"


def manifestation(review: Review) -> str:
    """The signature in one sentence: who, when, what it means, whether it verifies."""
    return (f"Signed by {signer_text(review)} on {signed_time(review.signed_at)}, meaning "
            f"“{review.meaning}”: {signature_status(review)}")


def account_text(account: Account | None) -> str:
    """Who is signed in, for the status bar and the review panel."""
    if account is None:
        return "Not signed in"
    return (f"{display_name(account.full_name)} ({display_name(account.login)}, "
            f"{account.role})")
