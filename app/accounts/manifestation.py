"""How a signature is shown (21 CFR 11.50): the printed name, the date and time with its
zone, the meaning, and whether the signature verifies, in one wording for the terminal, the
window and the audit PDF."""

from __future__ import annotations

from datetime import UTC, datetime

from app.accounts.keys import short_fingerprint
from app.accounts.names import escaped
from app.store.records import Review

UNSIGNED_OLD = "unsigned (recorded before accounts)"
MISSING = "signature missing"


def signed_when(iso_text: str) -> str:
    """``2026-12-04 19:51:25 UTC`` from the stored UTC ISO time."""
    try:
        moment = datetime.fromisoformat(iso_text).astimezone(UTC)
    except ValueError:
        return iso_text
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def printed_name(review: Review) -> str:
    """The signer's printed name, escaped if it holds control characters (old histories
    hold typed names that were never checked)."""
    return escaped(review.signature.full_name if review.signature else review.reviewer)


def signature_status(review: Review) -> str:
    sig = review.signature
    if sig is None:
        return UNSIGNED_OLD if review.recorded_before_accounts else MISSING
    if sig.verified:
        return f"signature verified (Ed25519, key {short_fingerprint(sig.key_fingerprint)})"
    return f"signature NOT verified: {sig.problem}"


def signature_line(review: Review) -> str:
    """One line: who, as what, when, and whether it holds."""
    login = f" ({review.signature.login})" if review.signature else ""
    return (f"signed by {printed_name(review)}{login}, meaning {review.meaning}, "
            f"{signed_when(review.signed_at)}: {signature_status(review)}")
