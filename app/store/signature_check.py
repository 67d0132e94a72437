"""Checking a review's signature against the public key valid at its time.

Used when a case is read (each review shows "signature verified" or why not) and by
``audit verify`` for the whole history. A key is valid for a signature when it is the
signer's own key, created at or before the signing, and not yet replaced by a newer key of
theirs at that moment (a rotation keeps old keys only to verify what they signed before).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from app.accounts.keys import signature_valid
from app.accounts.names import role_allows
from app.accounts.statements import ReviewContent, Signatory, review_statement
from app.store.canonical import iso
from app.store.records import ReviewSignature
from app.store.schema import ReviewRow, SignatureRow, SigningKeyRow, UserRow


@dataclass(frozen=True)
class KeyInfo:
    id: int
    user_id: int | None
    public_key: str
    fingerprint: str
    created: datetime


class KeyBook:
    """Every key of the history, to find the one valid for a signature without a query each."""

    def __init__(self, rows: Iterable[SigningKeyRow]) -> None:
        self.by_id = {row.id: KeyInfo(row.id, row.user_id, row.public_key, row.fingerprint,
                                      row.created) for row in rows}
        self._created_by_user: dict[int, list[datetime]] = {}
        for key in sorted(self.by_id.values(), key=lambda k: (k.created, k.id)):
            if key.user_id is not None:
                self._created_by_user.setdefault(key.user_id, []).append(key.created)

    def problem(self, key_id: int, user_id: int | None, at: datetime) -> str | None:
        key = self.by_id.get(key_id)
        if key is None:
            return f"its key {key_id} is not in the history"
        if key.user_id != user_id:
            return "it was made with a key that is not the signer's"
        if key.created > at:
            return "it was made with a key created after the signing time"
        if user_id is not None:
            created = self._created_by_user.get(user_id, [])
            newer = created[bisect.bisect_right(created, key.created):]
            if newer and newer[0] <= at:
                return "it was made with a key the signer had already replaced"
        return None


def content_of(review: ReviewRow, case_sha256: str) -> ReviewContent:
    return ReviewContent(review.id, review.case_id, case_sha256, review.decision, review.label,
                         review.reason, review.meaning, iso(review.signed_at))


def check_signature(review: ReviewRow, sig: SignatureRow, user: UserRow | None, keys: KeyBook,
                    chain_hash: Callable[[int], str | None]) -> ReviewSignature:
    """The review's signature as a record, with ``problem`` saying why it does not hold."""
    key = keys.by_id.get(sig.key_id)
    fingerprint = key.fingerprint if key else ""
    shown = ReviewSignature(sig.user_id, user.login if user else "?",
                            user.full_name if user else "?", sig.role, fingerprint,
                            sig.head_id, sig.head_hash)
    problem = _problem(review, sig, user, keys, chain_hash)
    return shown if problem is None else ReviewSignature(**{**shown.__dict__,
                                                            "problem": problem})


def _problem(review: ReviewRow, sig: SignatureRow, user: UserRow | None, keys: KeyBook,
             chain_hash: Callable[[int], str | None]) -> str | None:
    if sig.case_id != review.case_id:
        return f"the signature was made for case {sig.case_id} and copied onto this review"
    if sig.case_sha256 != review.case_sha256:
        return "it was made over another version of the case"
    if user is None:
        return f"the signer's account {sig.user_id} is missing"
    key_problem = keys.problem(sig.key_id, sig.user_id, review.signed_at)
    if key_problem:
        return key_problem
    if review.meaning == "approved" and not role_allows(sig.role, "approver"):
        return f"it means 'approved' but was signed with the role {sig.role}"
    key = keys.by_id[sig.key_id]
    signatory = Signatory(user.id, user.login, user.full_name, sig.role, key.id,
                          key.fingerprint)
    statement = review_statement(content_of(review, sig.case_sha256), signatory,
                                 sig.head_id, sig.head_hash)
    if not signature_valid(key.public_key, sig.signature, statement):
        return ("the signature does not verify: the review, the signer's name or key, or "
                "the signature itself was changed after signing")
    in_chain = chain_hash(sig.head_id)
    if in_chain != sig.head_hash:
        return (f"the audit chain it signed was rewritten: event {sig.head_id} is "
                f"{'missing' if in_chain is None else 'not the one signed'}")
    return None
