"""``audit verify``: everything the history's integrity rests on, checked in one snapshot.

1. The hash chain, link by link, and every record against the event that cites it
   (``audit``).
2. Every review's electronic signature against the public key valid at its time, over the
   chain head it names: a review whose signature is missing, invalid, made over another
   case version or over a rewritten chain is named by id. Reviews from before accounts are
   counted, not failed.
3. Every signed checkpoint: a valid one anchors the chain up to its event, so deleting the
   newest events or rewriting the chain below it is caught; events after the last one are
   reported as not yet anchored (the bounded tail).
4. The accounts: each user's role and disabled flag against the latest event that set them.
5. The append-only guards: a dropped trigger is reported, since without it rows can change.
6. ``against``: a head copied from an earlier export is still in the chain, unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from sqlalchemy import func, select, text, union
from sqlalchemy.orm import Session

from app.accounts.keys import signature_valid
from app.accounts.statements import checkpoint_statement
from app.store import audit
from app.store.accounts import STATE_EVENTS
from app.store.reads import accounts_from_review
from app.store.records import ChainVerification
from app.store.schema import (
    APPEND_ONLY_TABLES,
    AuditEventRow,
    CheckpointRow,
    ReviewerRow,
    ReviewRow,
    SignatureRow,
    SigningKeyRow,
    UserRow,
    UserStateRow,
)
from app.store.signature_check import KeyBook, check_signature
from models.progress import ProgressCallback, ProgressTracker

BATCH = 2000


@dataclass
class _Findings:
    bad_signatures: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    signatures: int = 0
    before_accounts: int = 0
    anchored_to: int | None = None


def parse_head(value: str) -> tuple[int, str]:
    """``ID:HASH`` (as printed on an export) into its parts; ValueError says the form."""
    event_id, _, digest = value.strip().partition(":")
    if not event_id.isdigit() or len(digest) != 64:
        raise ValueError(f"{value!r} is not a chain head: give it as ID:HASH, e.g. "
                         "1234:9f86d081... (64 hex digits), as printed on an audit PDF")
    return int(event_id), digest.lower()


def verify_history(session: Session, progress: ProgressCallback | None = None,
                   against: tuple[int, str] | None = None) -> ChainVerification:
    total = session.scalar(select(func.count()).select_from(AuditEventRow)) or 0
    signed = session.scalar(select(func.count()).select_from(ReviewRow)) or 0
    tracker = ProgressTracker("verifying the audit trail", 2 * total + signed, progress)
    wanted = _wanted_heads(session, against)
    chain = audit.walk_chain(session, BATCH, tracker, wanted)
    tracker.done = chain.count
    tracker.report("the chain is walked; now the records it cites")
    problems = list(chain.problems)
    for kind, model in audit.RECORD_EVENTS.items():
        problems += audit.walk_records(session, kind, model, BATCH, tracker)
    tracker.done = 2 * total
    tracker.report("records checked; now the signatures")
    found = _Findings()
    keys = KeyBook(session.scalars(select(SigningKeyRow)))
    _check_signatures(session, keys, chain.hashes, found, tracker)
    _check_checkpoints(session, keys, chain.hashes, chain.count, found)
    _check_accounts(session, found)
    _check_guards(session, found)
    against_note = _check_against(against, chain.hashes, found)
    tracker.done = tracker.total
    tracker.report("checked")
    return _result(chain.count, problems, found, against_note)


def _wanted_heads(session: Session, against: tuple[int, str] | None) -> set[int]:
    """The event ids whose hashes the signatures and checkpoints name (kept from the walk,
    so checking 20,000 signatures costs no query each)."""
    ids = set(session.scalars(union(select(SignatureRow.head_id),
                                    select(CheckpointRow.event_id))))
    if against:
        ids.add(against[0])
    return ids


def _check_signatures(session: Session, keys: KeyBook, hashes: dict[int, str],
                      found: _Findings, tracker: ProgressTracker) -> None:
    before = accounts_from_review(session)
    first_account = _first_account_event(session)
    users = {row.id: row for row in session.scalars(select(UserRow))}
    named, logged_at = _reviewers_named_by_events(session)
    query = (select(ReviewRow, SignatureRow, ReviewerRow.name).join(ReviewerRow)
             .outerjoin(SignatureRow, SignatureRow.review_id == ReviewRow.id)
             .order_by(ReviewRow.id).execution_options(yield_per=BATCH))
    for seen, (review, sig, name) in enumerate(session.execute(query), start=1):
        if seen % BATCH == 0:
            tracker.advance(BATCH)
        if named.get(review.id, name) != name:
            # The reviewers table is not hashed; the review's event names who signed.
            found.bad_signatures.append((review.id, f"the reviewers table names {name!r} "
                                                    f"but the review was signed by "
                                                    f"{named[review.id]!r}"))
            continue
        if sig is None:
            # Excused only when made before accounts by both the migration's marker and
            # the hashed chain: the marker is a plain row anyone with the file can raise.
            if review.id <= before and logged_at.get(review.id, first_account) < first_account:
                found.before_accounts += 1
            else:
                found.bad_signatures.append((review.id, "its signature is missing"))
            continue
        found.signatures += 1
        checked = check_signature(review, sig, users.get(sig.user_id), keys, hashes.get)
        if checked.problem:
            found.bad_signatures.append((review.id, checked.problem))
    stray = session.scalars(select(SignatureRow.id).where(
        ~SignatureRow.review_id.in_(select(ReviewRow.id)))).all()
    found.problems += [f"signature {sid} belongs to no review" for sid in stray]


def _reviewers_named_by_events(session: Session) -> tuple[dict[int, str], dict[int, int]]:
    """Each review's signer as its ``reviewed`` event names them (the event is hashed), and
    the id of that event."""
    named: dict[int, str] = {}
    logged_at: dict[int, int] = {}
    query = (select(AuditEventRow.id, AuditEventRow.payload)
             .where(AuditEventRow.kind == "reviewed").execution_options(yield_per=BATCH))
    for event_id, payload in session.execute(query):
        data = json.loads(payload)
        review_id = (data.get("record") or {}).get("id")
        named[review_id] = data.get("reviewer")
        logged_at[review_id] = event_id
    return named, logged_at


def _first_account_event(session: Session) -> float:
    """The chain position of the first account (infinity in a history without accounts):
    every review logged after it must be signed."""
    first = session.scalar(select(func.min(AuditEventRow.id))
                           .where(AuditEventRow.kind == "user_created"))
    return math.inf if first is None else first


def _check_checkpoints(session: Session, keys: KeyBook, hashes: dict[int, str], events: int,
                       found: _Findings) -> None:
    for row in session.scalars(select(CheckpointRow).order_by(CheckpointRow.id)):
        key = keys.by_id.get(row.key_id)
        statement = checkpoint_statement(row.event_id, row.event_hash, row.signed_at,
                                         row.reason, key.fingerprint if key else "")
        if key is None or not signature_valid(key.public_key, row.signature, statement):
            found.problems.append(f"checkpoint {row.id} does not verify (changed, or its key "
                                  "is not in the history)")
        elif row.event_id not in hashes:
            found.problems.append(
                f"event {row.event_id}, signed by checkpoint {row.id} at {row.signed_at}, is "
                f"missing: the chain ends at event {events}, so events were deleted")
        elif hashes[row.event_id] != row.event_hash:
            found.problems.append(
                f"event {row.event_id} is not the one checkpoint {row.id} signed at "
                f"{row.signed_at}: the chain was rewritten")
        else:
            found.anchored_to = max(found.anchored_to or 0, row.event_id)


def _check_accounts(session: Session, found: _Findings) -> None:
    """Each user's role and disabled flag is the one the latest state event recorded."""
    latest: dict[int, dict] = {}
    events = session.scalars(select(AuditEventRow.payload)
                             .where(AuditEventRow.kind.in_(STATE_EVENTS))
                             .order_by(AuditEventRow.id))
    for payload in events:
        data = json.loads(payload)
        latest[data["user"]["id"]] = data["state"]
    for user, state in session.execute(select(UserRow, UserStateRow).outerjoin(
            UserStateRow, UserStateRow.user_id == UserRow.id)):
        recorded = latest.get(user.id)
        now = None if state is None else {"role": state.role, "disabled": state.disabled}
        if recorded is None or now != recorded:
            found.problems.append(
                f"user {user.id} ({user.login}) has a role or status no audit event "
                f"recorded (now {now}, recorded {recorded}): changed outside Casewise")


# The guards' triggers that are in force (PostgreSQL: a disabled trigger guards nothing).
GUARD_QUERIES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type='trigger'",
    "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'",
}
GUARDED_ACTIONS = {"sqlite": ("update", "delete"),
                   "postgresql": ("update", "delete", "truncate")}


def _check_guards(session: Session, found: _Findings) -> None:
    dialect = session.get_bind().dialect.name
    if dialect not in GUARD_QUERIES:
        return
    present = set(session.scalars(text(GUARD_QUERIES[dialect])))
    missing = [f"{table}_no_{action}" for table in APPEND_ONLY_TABLES
               for action in GUARDED_ACTIONS[dialect] if f"{table}_no_{action}" not in present]
    if missing:
        found.problems.append("the append-only guards were removed (" + ", ".join(missing) +
                              "): rows of those tables could be changed or deleted")


def _check_against(against: tuple[int, str] | None, hashes: dict[int, str],
                   found: _Findings) -> str | None:
    if against is None:
        return None
    event_id, digest = against
    held = hashes.get(event_id)
    if held == digest:
        return f"the history still holds event {event_id} with hash {digest} unchanged"
    found.problems.append(
        f"the head given ({event_id}:{digest[:12]}...) is not in the history: event "
        f"{event_id} is {'missing' if held is None else 'different'}")
    return None


def _result(count: int, problems: list[tuple[int | None, str]], found: _Findings,
            against: str | None) -> ChainVerification:
    chain_ok = not problems
    cited = [p for p in problems if p[0] is not None]
    first = (min(cited) if cited else problems[0]) if problems else (None, None)
    ok = chain_ok and not found.bad_signatures and not found.problems
    reason = first[1] if not chain_ok else (
        found.problems[0] if found.problems else
        f"{len(found.bad_signatures)} review(s) with a signature that does not hold"
        if found.bad_signatures else None)
    anchored = found.anchored_to
    return ChainVerification(
        ok, count, first[0], reason, signatures=found.signatures,
        bad_signatures=tuple(found.bad_signatures),
        unsigned_before_accounts=found.before_accounts, anchored_to=anchored,
        unanchored_events=count - (anchored or 0), problems=tuple(found.problems),
        against=against)
