"""How a signature is shown (21 CFR 11.50): the printed name, the date and time with its
zone, the meaning, and whether the signature verifies, in one wording for the terminal, the
window and the audit PDF.

Nothing is checked here: ``Review.signature`` arrives verified (or with its ``problem``) from
the store, so every view says what the history's own check found.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.accounts.names import shown

if TYPE_CHECKING:  # the window imports this before the store (and cryptography) is loaded
    from app.store.records import Review

VERIFIED = "signature verified"
NOT_VERIFIED = "signature NOT verified"
BEFORE_ACCOUNTS = "unsigned (recorded before accounts)"
MISSING = "signature missing"


def display_name(value: object) -> str:
    """A name as typed, or quoted with its control and invisible characters escaped when it
    holds any: names are checked when an account is made, but an old history (a typed
    reviewer name) may hold anything, and a bidi override could make it read as another."""
    text = "" if value is None else str(value)
    quoted = shown(text)
    return text if quoted[1:-1] == text else quoted


def signed_when(iso_text: str | None) -> str:
    """``2026-12-04 19:51:25 UTC`` from a stored UTC ISO time (an old naive one is UTC)."""
    if not iso_text:
        return ""
    try:
        moment = datetime.fromisoformat(iso_text)
    except ValueError:
        return display_name(iso_text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def printed_name(review: Review) -> str:
    """The signer's full name as their account holds it (the typed name before accounts)."""
    return display_name(review.signature.full_name if review.signature else review.reviewer)


def state_of(review: Review) -> str:
    """The short verdict: verified, NOT verified, unsigned before accounts, or missing."""
    if review.signature is not None:
        return VERIFIED if review.signature.verified else NOT_VERIFIED
    return BEFORE_ACCOUNTS if review.recorded_before_accounts else MISSING


def verdict(review: Review) -> str:
    """The verdict with its reason when the signature does not hold."""
    sig = review.signature
    if sig is not None and not sig.verified:
        return f"{NOT_VERIFIED}: {display_name(sig.problem)}"
    return state_of(review)


def trusted(review: Review) -> bool:
    """A status a reader may rely on: verified, or openly from before accounts."""
    return state_of(review) in (VERIFIED, BEFORE_ACCOUNTS)


def signature_status(review: Review) -> str:
    """``verdict``, with the key for a verified signature."""
    from app.accounts.keys import short_fingerprint

    sig = review.signature
    if sig is not None and sig.verified:
        return f"{VERIFIED} (Ed25519, key {short_fingerprint(sig.key_fingerprint)})"
    return verdict(review)


def signature_line(review: Review) -> str:
    """One line: who, as what, when, and whether it holds."""
    login = f" ({display_name(review.signature.login)})" if review.signature else ""
    return (f"signed by {printed_name(review)}{login}, meaning {review.meaning}, "
            f"{signed_when(review.signed_at)}: {signature_status(review)}")
