"""``CaseRepository``: the only way into the case history.

Each public method is one transaction that also appends its audit event, so a killed
process leaves either the whole operation or none of it. Methods return plain frozen
dataclasses (``app.store.records``); sessions and ORM objects never leave this package.
Driver errors come out as ``StoreError`` subclasses that say what to do.
"""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.accounts.statements import StatementSigner
from app.store import audit, batch, case_list, claims, reads, writes
from app.store.account_store import AccountStore
from app.store.backups import offer_backups
from app.store.canonical import utc_now
from app.store.engine import writer
from app.store.errors import InvalidRecord, StoreCorrupt, StoreError, StoreReadOnly, translate
from app.store.file_state import forget_clean_close, record_clean_close
from app.store.queries import (
    MANY_MATCHES,
    MAX_PAGE_SIZE,
    CaseFilter,
    CaseListQuery,
    list_query,
    summaries,
    summary_of,
)
from app.store.records import (
    JUDGED,
    AuditedDecision,
    AuditEvent,
    CasePage,
    CaseProgress,
    CaseRecord,
    CaseWrite,
    ChainVerification,
    Judgement,
    Review,
    ReviewedCase,
)
from app.store.review_rules import ReviewRequest
from app.store.schema import AUDIT_SAMPLED, AuditEventRow
from app.store.verify import verify_history
from explainers.types import Attribution, LLMOpinion
from models.progress import ProgressCallback
from models.types import EscalationDecision, Prediction

log = logging.getLogger(__name__)


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers, services)
        return "unknown"


class CaseRepository(AccountStore):
    """Cases, their records and reviews, accounts, and the audit trail. Get one from
    ``open_store``; it is safe to share between threads (one session per call)."""

    def __init__(self, engine: Engine, location: str, actor: str | None = None, *,
                 clock: Callable[[], datetime] = utc_now, db_path: Path | None = None,
                 read_only: bool = False) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.location = location  # the file (or URL) named in error messages
        self.db_path = db_path  # the SQLite file, when it is one: backups, the close record
        self._found_damage = False
        self.read_only = read_only  # opened to read a file that cannot be written
        self.actor = actor or _default_actor()
        # What stamps each write (UTC-aware). Replaceable so a benchmark or a test can lay
        # down a history spread over time; the app never changes it.
        self.clock = clock

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._checkpoint_at_close()
        if not self._found_damage and not self.read_only:
            case_list.refresh_statistics(self._engine)  # cheap unless the store grew 2x
        self._engine.dispose()  # the last SQLite connection out checkpoints the WAL
        if self.db_path is None:
            return
        if self._found_damage:  # the next start must check every page, and refuse the file
            forget_clean_close(self.db_path)
        else:
            record_clean_close(self.db_path)  # lets the next start skip the full check

    def _checkpoint_at_close(self) -> None:
        """Anchor what this session wrote; a history that cannot be written any more (full
        disk, damage) still closes, and the next checkpoint covers these events."""
        if self._anchor is None or self._found_damage:
            return
        try:
            self.checkpoint("close")
        except StoreError as exc:
            log.warning("no checkpoint at close: %s", exc)

    def __enter__(self) -> CaseRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Session]:
        try:
            with Session(self._writer if write else self._engine) as session, session.begin():
                yield session
        except DBAPIError as exc:
            error = translate(exc, self.location)
            if isinstance(error, StoreCorrupt) and self.db_path is not None:
                self._found_damage = True
                error = offer_backups(error, self.db_path)
            raise error from exc

    @contextmanager
    def _txn(self) -> Iterator[writes.Txn]:
        if self.read_only:
            raise StoreReadOnly(f"The case history {self.location} was opened read-only (it "
                                "cannot be written); nothing was stored. Make it writable to "
                                "add to it.")
        with self._transaction(write=True) as session:
            yield writes.Txn(session, self.actor, self.clock())
            due = self._checkpoint_due(session)  # read in the write: no second transaction
        if due:
            self.checkpoint("interval")

    # -- cases and their records ---------------------------------------------------------------

    def add_case(self, text: str, source: str = "typed", metadata: dict[str, Any] | None = None,
                 *, prediction: Prediction | None = None,
                 escalation: EscalationDecision | None = None) -> CaseWrite:
        """Store a case, or find the one with the same text (then nothing else is stored).

        A prediction and escalation decision given here go in the same transaction as the
        case, so a case is never stored without its result.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidRecord("A case needs some text.")
        with self._txn() as tx:
            existing = reads.case_id_with_text(tx.session, text)
            if existing is not None:
                return _written(tx.session, existing, new=False)
            case = writes.add_case(tx, text, source, metadata)
            ids = _analysis(tx, case.id, prediction, escalation)
            return _written(tx.session, case.id, new=True, record_ids=ids)

    def add_cases(self, items: Iterable[batch.NewCase]) -> list[CaseWrite]:
        """Store many cases, each with its prediction and escalation decision, in ONE
        transaction: all of them or, if any item is refused or the write fails, none.

        Returns one ``CaseWrite`` per item, in order; a text already stored (or met earlier in
        the same batch) is skipped with ``new=False``, as ``add_case`` does. Give a few
        thousand at a time to report progress between calls.
        """
        with self._txn() as tx:
            return batch.add_cases(tx, items)

    def case_id_for_text(self, text: str) -> int | None:
        """The id of the stored case with exactly this text, to skip it before scoring."""
        with self._transaction(write=False) as session:
            return reads.case_id_with_text(session, text)

    def case_progress(self, texts: Iterable[str]) -> dict[str, CaseProgress]:
        """For each text already stored: its case id and what it holds (the latest
        prediction's model, whether that prediction is explained, whether an opinion was
        asked). One read for a whole chunk; a resumed batch finishes what a case lacks."""
        with self._transaction(write=False) as session:
            return reads.progress_of(session, list(texts))

    def record_analysis(self, case_id: int, prediction: Prediction,
                        escalation: EscalationDecision | None) -> CaseWrite:
        """A new prediction of a stored case with its escalation decision, in one
        transaction (re-analysing with another model keeps both in the trail)."""
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            ids = _analysis(tx, case_id, prediction, escalation)
            return _written(tx.session, case_id, new=False, record_ids=ids)

    def record_prediction(self, case_id: int, prediction: Prediction) -> CaseWrite:
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            row = writes.add_prediction(tx, case_id, prediction)
            return _written(tx.session, case_id, new=False, record_ids={"prediction": row.id})

    def record_attribution(self, case_id: int, attribution: Attribution,
                           prediction_id: int | None = None) -> CaseWrite:
        """Store an attribution; it explains ``prediction_id`` (default: the latest)."""
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            row = writes.add_attribution(tx, case_id, attribution, prediction_id)
            return _written(tx.session, case_id, new=False, record_ids={"attribution": row.id})

    def record_escalation(self, case_id: int, decision: EscalationDecision,
                          prediction_id: int | None = None) -> CaseWrite:
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            row = writes.add_escalation(tx, case_id, decision, prediction_id)
            return _written(tx.session, case_id, new=False, record_ids={"escalation": row.id})

    def record_opinion(self, case_id: int, opinion: LLMOpinion) -> CaseWrite:
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            row = writes.add_opinion(tx, case_id, opinion)
            return _written(tx.session, case_id, new=False, record_ids={"opinion": row.id})

    def record_many(self, items: Sequence[tuple[int, Attribution | LLMOpinion]]
                    ) -> list[CaseWrite]:
        """Attributions and opinions of many cases in ONE transaction (batch scoring): all
        of them or none. Each explains its case's latest prediction."""
        with self._txn() as tx:
            reads.require_cases(tx.session, {case_id for case_id, _record in items})
            ids = batch.add_records(tx, list(items))
            return _written_many(tx.session, ids)

    # -- reviews -------------------------------------------------------------------------------

    def add_review(self, case_id: int, signer: StatementSigner, decision: str,
                   label: str | None = None, reason: str | None = None,
                   meaning: str = "reviewed", *, expected_sha256: str | None = None) -> Review:
        """Sign a review of the case as it is now (``review_case`` also gives the case's new
        row)."""
        return self.review_case(case_id, signer, decision, label, reason, meaning,
                                expected_sha256=expected_sha256).review

    def review_case(self, case_id: int, signer: StatementSigner, decision: str,
                    label: str | None = None, reason: str | None = None,
                    meaning: str = "reviewed", *,
                    expected_sha256: str | None = None) -> CaseWrite:
        """Sign a review of the case as it is now, with ``signer``'s key (an account unlocked
        by its password: ``app.accounts``). Reviews are never edited: a later one supersedes
        this one and both stay. Give ``expected_sha256`` (the ``version_sha256`` the
        reviewer was shown) to refuse signing a case that changed."""
        who = signer.signatory
        request = ReviewRequest(who.login, decision, label, reason, meaning)
        with self._txn() as tx:
            case = reads.require_case(tx.session, case_id)
            row = writes.add_review(tx, case, request, expected_sha256, signer)
            claims.release(tx.session, case_id)  # reviewed: nobody need hold it any more
            review = reads.reviews_of(tx.session, case_id, newest_only=True)[0]
            return replace(_written(tx.session, case_id, new=False,
                                   record_ids={"review": row.id}), review=review)

    # -- review claims (a team's queue: app.review_queue) -------------------------------------

    def claim_case(self, case_id: int, who: str, minutes: float = claims.CLAIM_MINUTES) -> bool:
        """Claim the case for ``who`` (or renew their claim) for ``minutes``; False when
        another reviewer holds it. Not an audit event: coordination, not evidence."""
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            return claims.claim(tx.session, case_id, who, tx.now, minutes)

    def release_claim(self, case_id: int, who: str) -> None:
        """Give the case back to the queue (``who``'s claim only)."""
        with self._txn() as tx:
            claims.release(tx.session, case_id, who)

    def claimed_by_others(self, who: str) -> dict[int, str]:
        """Case id -> reviewer, for the unexpired claims of reviewers other than ``who``."""
        with self._transaction(write=False) as session:
            return claims.held_by_others(session, who, self.clock())

    def record_judgement(self, case_id: int, label: str | None, note: str,
                         judge: str | None = None) -> Judgement:
        """A blind first judgement (``label`` None: cannot tell), made by ``judge`` (default:
        the store's actor, the signed-in user in the app) before the model's answer was
        shown: an audit event of the case, not a signature."""
        with self._txn() as tx:
            reads.require_case(tx.session, case_id)
            labels = reads.latest_labels(tx.session, case_id)
            if label is not None and labels and label not in labels:
                raise StoreError(f"{label!r} is not one of the model's labels "
                                 f"({', '.join(labels)}).")
            event = tx.log(JUDGED, {"label": label, "note": note.strip()}, case_id,
                           actor=judge)
        return Judgement.from_event(event)

    def reviewed_cases(self, approved_only: bool = False) -> list[ReviewedCase]:
        """The cases reviewers labelled by a signed review (``reads.reviewed_cases``)."""
        with self._transaction(write=False) as session:
            return reads.reviewed_cases(session, approved_only)

    def audited_decisions(self, policy_id: str) -> list[AuditedDecision]:
        """AUTO decisions of a policy that reviewers have since signed (``reads``)."""
        with self._transaction(write=False) as session:
            return reads.audited_decisions(session, policy_id)

    def weekly_activity(self) -> list[dict[str, Any]]:
        """Per ISO week and model: decisions, escalations, unusual texts, reviews, overrides."""
        with self._transaction(write=False) as session:
            return reads.weekly_activity(session)

    def latest_review(self, case_id: int) -> Review | None:
        with self._transaction(write=False) as session:
            reads.require_case(session, case_id)
            newest = reads.reviews_of(session, case_id, newest_only=True)
            return newest[0] if newest else None

    # -- reading -------------------------------------------------------------------------------

    def get_case(self, case_id: int) -> CaseRecord:
        with self._transaction(write=False) as session:
            return reads.load_case(session, case_id)

    def find_cases(self, *, label: str | None = None, decision: str | None = None,
                   escalated: bool | None = None, reviewed: bool | None = None,
                   reviewer: str | None = None, model_id: str | None = None,
                   date_from: date | datetime | str | None = None,
                   date_to: date | datetime | str | None = None, search: str | None = None,
                   needs_review: bool | None = None, audit_sample: bool | None = None,
                   sort: str = "-created", page: int = 1, page_size: int = 50) -> CasePage:
        """One page of case summaries and the number of matching cases. See
        ``queries.CaseFilter`` for what each filter means; ``sort`` is one of created, id,
        label, confidence, relevance (with a search), with '-' for descending."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise StoreError(f"page starts at 1 and page_size is 1 to {MAX_PAGE_SIZE}.")
        filters = CaseFilter(label, decision, escalated, reviewed, reviewer, model_id,
                             date_from, date_to, search, needs_review, audit_sample)
        listing = list_query(filters, sort, self._engine.dialect.name)
        with self._transaction(write=False) as session:
            ids, total = _page(session, listing, page, page_size)
            rows = {row.id: row for row in session.execute(summaries(ids))} if ids else {}
        return CasePage(tuple(summary_of(rows[i]) for i in ids), total, page, page_size)

    # -- the audit trail -----------------------------------------------------------------------

    def audit_events(self, *, case_id: int | None = None, kind: str | None = None,
                     after_id: int = 0, limit: int = 1000) -> tuple[AuditEvent, ...]:
        query = select(AuditEventRow).where(AuditEventRow.id > after_id)
        if case_id is not None:
            query = query.where(AuditEventRow.case_id == case_id)
        if kind is not None:
            query = query.where(AuditEventRow.kind == kind)
        with self._transaction(write=False) as session:
            rows = session.scalars(query.order_by(AuditEventRow.id).limit(limit))
            return tuple(audit.to_event(row) for row in rows)

    def verify_chain(self, progress: ProgressCallback | None = None,
                     against: tuple[int, str] | None = None) -> ChainVerification:
        """Check every page of the file (SQLite: the start checks them all only when the
        file may have changed outside Casewise), then, in one consistent snapshot, walk the
        whole chain, the records it cites, every signature and checkpoint, the accounts and
        the append-only guards (``app.store.verify``), and check the case list agrees with
        the records. ``against``: an (event id, hash) from an earlier export that must
        still be in the chain unchanged."""
        damage = self._file_damage()
        if damage:
            self._found_damage = True
            return ChainVerification(False, 0, None, f"the database file is damaged "
                                     f"({damage}); restore it from a backup")
        with self._transaction(write=False) as session:
            result = verify_history(session, progress, against)
            stray = case_list.first_disagreement(session) if result.ok else None
        if stray is None:
            return result
        return replace(result, ok=False, reason=(
            f"the case list row of case {stray} does not match the case's latest records "
            "(edited outside Casewise); its records are intact, but lists and filters may "
            "show it wrongly"))

    def _file_damage(self) -> str | None:
        """What ``PRAGMA quick_check`` finds wrong with the SQLite file, or None. Damage that
        stops the check itself is a finding too (and leaves only ROLLBACK possible, hence a
        connection of its own)."""
        if self._engine.dialect.name != "sqlite":
            return None
        try:
            with self._engine.connect() as connection:
                problems = [row[0] for row in connection.execute(text("PRAGMA quick_check"))]
        except DBAPIError as exc:
            error = translate(exc, self.location)
            if not isinstance(error, StoreCorrupt):
                raise error from exc
            return str(exc.orig)
        return None if problems == ["ok"] else "; ".join(problems[:3])

    def chain_head(self) -> tuple[int, str] | None:
        """The last event's id and hash: print it on exports to anchor the chain."""
        with self._transaction(write=False) as session:
            return audit.head(session)

    def recorded_weights(self, model_id: str) -> str | None:
        """The weights' SHA-256 this history recorded for ``model_id`` (None: never seen, or
        recorded without it)."""
        from app.store.schema import ModelRow

        with self._transaction(write=False) as session:
            row = session.get(ModelRow, model_id)
            return None if row is None else row.weights_sha256

    def register_model(self, model_id: str, weights_sha256: str | None = None,
                       card: dict[str, Any] | None = None) -> None:
        with self._txn() as tx:
            writes.ensure_model(tx, model_id, weights_sha256, card)

    def record_model_activated(self, model_id: str, weights_sha256: str | None = None,
                               card: dict[str, Any] | None = None) -> AuditEvent:
        with self._txn() as tx:
            writes.ensure_model(tx, model_id, weights_sha256, card)
            return tx.log("model_activated", {"model_id": model_id,
                                              "weights_sha256": weights_sha256})

    def record_policy_refitted(self, model_id: str, policy_id: str,
                               details: dict[str, Any] | None = None) -> AuditEvent:
        with self._txn() as tx:
            return tx.log("policy_refitted", {"model_id": model_id, "policy_id": policy_id,
                                              "details": details or {}})

    def record_comparison(self, champion_id: str | None, challenger_id: str,
                          comparison: dict[str, Any], held_out: dict[str, Any]) -> AuditEvent:
        """A champion/challenger comparison on held-out reviewed cases, with how they were
        drawn: the record of why a new model was, or was not, put to work."""
        with self._txn() as tx:
            return tx.log("models_compared", {"champion": champion_id,
                                               "challenger": challenger_id,
                                               "comparison": comparison, "held_out": held_out})

    def record_guarantee_alarm(self, model_id: str, policy_id: str, summary: str,
                               wrong_case_ids: list[int]) -> AuditEvent | None:
        """The monitor found a policy's bound broken: an audit event, once per policy (None
        when it was recorded before)."""
        with self._txn() as tx:
            known = tx.session.scalars(select(AuditEventRow.payload).where(
                AuditEventRow.kind == "guarantee_alarm"))
            if any(json.loads(p).get("policy_id") == policy_id for p in known):
                return None
            return tx.log("guarantee_alarm", {"model_id": model_id, "policy_id": policy_id,
                                               "summary": summary,
                                               "wrong_case_ids": wrong_case_ids})

    def record_audit_samples(self, case_ids: Sequence[int], policy_id: str,
                             share: float) -> None:
        """Mark AUTO cases drawn at random for the audit sample: they join the review queue,
        blind, and their reviews are what the guarantee monitor reads. One transaction."""
        if not case_ids:
            return
        with self._txn() as tx:
            reads.require_cases(tx.session, set(case_ids))
            for case_id in case_ids:
                tx.log(AUDIT_SAMPLED, {"policy_id": policy_id, "share": share}, case_id)

    def audit_sampled(self, case_id: int) -> bool:
        with self._transaction(write=False) as session:
            return session.scalar(select(AuditEventRow.id).where(
                AuditEventRow.kind == AUDIT_SAMPLED, AuditEventRow.case_id == case_id)
                .limit(1)) is not None

    def end_guarantee_alarms(self, model_id: str, policy_id: str) -> list[AuditEvent]:
        """Close the alarms of the model's earlier policies once another policy is at work
        and has not raised one: an audit event for each (the alarm and its end are both on
        the record)."""
        def open_alarms(session: Session) -> list[dict]:
            payloads = [json.loads(p) for p in session.scalars(
                select(AuditEventRow.payload).where(AuditEventRow.kind.in_(
                    ("guarantee_alarm", "guarantee_alarm_ended"))).order_by(AuditEventRow.id))]
            ended = {p["policy_id"] for p in payloads if "ended_by" in p}
            return [p for p in payloads if "ended_by" not in p
                    and p.get("model_id") == model_id
                    and p["policy_id"] not in ended and p["policy_id"] != policy_id]

        # Read first: every model registration asks, and almost never is an alarm open, so
        # the write lock is taken only when there is something to record.
        with self._transaction(write=False) as session:
            if not open_alarms(session):
                return []
        with self._txn() as tx:
            return [tx.log("guarantee_alarm_ended",
                           {"model_id": model_id, "policy_id": p["policy_id"],
                            "ended_by": policy_id,
                            "reason": "a new policy was fitted and is at work"})
                    for p in open_alarms(tx.session)]

    def record_forced_promotion(self, model_id: str, reason: str,
                                comparison_event: int | None = None) -> AuditEvent:
        """A person put a model to work that the comparison did not promote, and said why."""
        if not reason or not reason.strip():
            raise StoreError("A forced promotion needs a reason.")
        with self._txn() as tx:
            return tx.log("promotion_forced", {"model_id": model_id, "reason": reason.strip(),
                                                "comparison_event": comparison_event})

    def record_export(self, path: str, sha256: str, case_ids: list[int],
                      kind: str = "pdf") -> AuditEvent:
        """Log an export; a single-case export is also filed under its case."""
        with self._txn() as tx:
            for case_id in case_ids:
                reads.require_case(tx.session, case_id)
            event = tx.log("exported", {"path": path, "sha256": sha256, "format": kind,
                                        "case_ids": list(case_ids)},
                           case_ids[0] if len(case_ids) == 1 else None)
        self.checkpoint("export")
        return event


def _page(session: Session, listing: CaseListQuery, page: int,
          page_size: int) -> tuple[list[int], int]:
    """The page's case ids and the number of matching cases, with as few counts as can be."""
    matched = None if listing.matches is None else session.scalar(listing.matches) or 0
    many = matched is not None and matched > MANY_MATCHES
    query = listing.ids_for_many_matches if many and listing.ids_for_many_matches is not None \
        else listing.ids
    offset = (page - 1) * page_size
    ids = list(session.scalars(query.limit(page_size).offset(offset)))
    if len(ids) < page_size and (ids or page == 1):  # a short page: the end is in sight
        return ids, offset + len(ids)
    if listing.count is listing.matches:  # a bare search: the match count is the total
        return ids, matched or 0
    return ids, session.scalar(listing.count) or 0


def _analysis(tx: writes.Txn, case_id: int, prediction: Prediction | None,
              escalation: EscalationDecision | None) -> dict[str, int]:
    ids = {}
    if prediction is not None:
        ids["prediction"] = writes.add_prediction(tx, case_id, prediction).id
    if escalation is not None:
        ids["escalation"] = writes.add_escalation(tx, case_id, escalation,
                                                  ids.get("prediction")).id
    return ids


def _written(session: Session, case_id: int, *, new: bool,
             record_ids: dict[str, int] | None = None) -> CaseWrite:
    """What a write of one case stored, read inside its transaction (it sees the write)."""
    return _written_many(session, {case_id: record_ids or {}}, new=new)[0]


def _written_many(session: Session, record_ids: dict[int, dict[str, int]], *,
                  new: bool = False) -> list[CaseWrite]:
    ids = list(record_ids)
    rows = {row.id: row for row in session.execute(summaries(ids))}
    versions = reads.current_versions(session, ids)
    return [CaseWrite(case_id, new, record_ids[case_id], versions[case_id],
                      summary_of(rows[case_id])) for case_id in ids]
