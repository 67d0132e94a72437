"""The exact bytes a signature covers: canonical JSON (sorted keys, no spaces, UTF-8) of a
statement that names what kind of thing is signed, so a signature over one kind can never be
presented as another.

A review's statement covers, per 21 CFR 11.50 and 11.70: the review and its case, the case
version signed (its hash), the decision, label, reason and meaning, the UTC time, the
signer's id, login id, printed name and role, the key's fingerprint, and the audit chain
head at the moment of signing. Because the head is covered, rewriting any earlier event,
even with every hash recomputed, breaks this signature; because the name is covered,
renaming the signer does too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol


def canonical_json(value: object) -> str:
    """The store's canonical form (``app.store.canonical``), restated here so the signing
    code depends on nothing but the standard library and ``cryptography``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


REVIEW_STATEMENT = "casewise review signature v1"
CHECKPOINT_STATEMENT = "casewise chain checkpoint v1"


@dataclass(frozen=True)
class Signatory:
    """Who signs: the identity a statement names (the history's users row and key row)."""

    user_id: int
    login: str
    full_name: str
    role: str
    key_id: int
    fingerprint: str


@dataclass(frozen=True)
class ReviewContent:
    review_id: int
    case_id: int
    case_sha256: str
    decision: str
    label: str | None
    reason: str | None
    meaning: str
    signed_at: str  # UTC ISO 8601 with microseconds, as stored


def review_statement(content: ReviewContent, signatory: Signatory, head_id: int,
                     head_hash: str) -> bytes:
    return canonical_json({
        "statement": REVIEW_STATEMENT,
        "review_id": content.review_id, "case_id": content.case_id,
        "case_sha256": content.case_sha256, "decision": content.decision,
        "label": content.label, "reason": content.reason, "meaning": content.meaning,
        "signed_at": content.signed_at,
        "signer": {"user_id": signatory.user_id, "login": signatory.login,
                   "full_name": signatory.full_name, "role": signatory.role},
        "key_fingerprint": signatory.fingerprint,
        "chain_head": {"id": head_id, "hash": head_hash},
    }).encode("utf-8")


def checkpoint_statement(event_id: int, event_hash: str, signed_at: str, reason: str,
                         fingerprint: str) -> bytes:
    return canonical_json({
        "statement": CHECKPOINT_STATEMENT, "event_id": event_id, "event_hash": event_hash,
        "signed_at": signed_at, "reason": reason, "key_fingerprint": fingerprint,
    }).encode("utf-8")


class StatementSigner(Protocol):
    """An unlocked key: who signs, and the Ed25519 signature (hex) of a statement's bytes.
    The store builds the statement inside its write transaction and asks for the signature
    there, so the chain head it covers is exactly the one the review follows."""

    signatory: Signatory

    def sign(self, data: bytes) -> str: ...
