"""How a review's electronic signature reads in the PDF (21 CFR 11.50): the signer's printed
name and login id, the date and time in UTC, what the signature means, and whether it
verified when the case was read for this report, with the key and the chain head it covers.

Nothing is checked here: ``Review.signature`` arrives verified (or with its ``problem``) from
the store, so the PDF says what the history's own check found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.accounts.manifestation import (
    VERIFIED,
    printed_name,
    signature_status,
    state_of,
)
from app.reports.document import ReportContext, utc

if TYPE_CHECKING:  # importing app.store would load alembic; only the types are needed
    from app.store.records import Review

# The wording is the core's, so the PDF, the window and the terminal say the same thing.
__all__ = ["key_rows", "manifestation", "manifestation_rows", "printed_name", "signer_of",
           "state_of"]


def signer_of(review: Review) -> str:
    """'Ann Reviewer (login id ann, approver)': who signed, as the manifestation names them."""
    sig = review.signature
    if sig is None:
        return f"{printed_name(review)} (typed name, no account)"
    return f"{printed_name(review)} (login id {sig.login}, {sig.role})"


def manifestation(review: Review) -> str:
    """One line with everything 11.50 asks for, for the earlier (superseded) reviews."""
    label = f" → {review.label}" if review.label else ""
    reason = f" ({review.reason})" if review.reason else ""
    return (f"#{review.id} {utc(review.signed_at)}: {review.decision}{label}{reason}, "
            f"signed by {signer_of(review)}, meaning {review.meaning}; {signature_status(review)}")


def manifestation_rows(review: Review, ctx: ReportContext) -> list[tuple[str, Any]]:
    """Who signed, when, meaning what, and whether the signature holds."""
    w = ctx.writer
    style = w.styles.body if state_of(review) == VERIFIED else w.styles.warning
    return [("Signed by", signer_of(review)), ("Signed at", utc(review.signed_at)),
            ("Signature means", review.meaning),
            ("Signature", w.p(signature_status(review), style))]


def key_rows(review: Review, ctx: ReportContext) -> list[tuple[str, Any]]:
    """The whole key fingerprint and the chain head the signature covers, for the auditor."""
    sig = review.signature
    if sig is None:
        return []
    w = ctx.writer
    return [("Key fingerprint", w.p(f"{sig.key_fingerprint} (SHA-256 of the public key)",
                                    w.styles.mono)),
            ("Chain head signed", w.p(f"event {sig.head_id}, sha256 {sig.head_hash}",
                                      w.styles.mono))]
