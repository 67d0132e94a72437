"""Writing records, each with its audit event, inside a transaction the repository opened.

Every function here adds rows and the event that cites them to the same session, so they
commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.statements import StatementSigner, review_statement
from app.store import accounts, audit, case_list, reads
from app.store.canonical import GENESIS_HASH, as_plain_dict, record_data, sha256_hex
from app.store.errors import InvalidRecord, InvalidReview
from app.store.records import AuditEvent
from app.store.review_rules import ReviewRequest, checked
from app.store.schema import (
    ESCALATION_DECISIONS,
    AttributionRow,
    Base,
    CaseRow,
    EscalationRow,
    ModelRow,
    OpinionRow,
    PredictionRow,
    ReviewerRow,
    ReviewRow,
    SignatureRow,
)
from app.store.signature_check import content_of
from explainers.types import Attribution, LLMOpinion
from models.types import EscalationDecision, Prediction

RowT = TypeVar("RowT", bound=Base)


@dataclass(frozen=True)
class Txn:
    """One write transaction: the session, who is acting, and the one time stamped on it."""

    session: Session
    actor: str
    now: datetime

    def add(self, row: RowT) -> RowT:
        self.session.add(row)
        self.session.flush()  # assigns the id the audit event cites
        return row

    def log(self, kind: str, payload: dict[str, Any], case_id: int | None = None,
            actor: str | None = None) -> AuditEvent:
        return audit.append(self.session, kind, actor or self.actor, payload, self.now, case_id)


def _text_field(data: dict[str, Any], key: str, what: str, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRecord(f"The {what} has no {key!r}; it cannot be stored.")
    return value


def add_case(tx: Txn, text: str, source: str, metadata: dict[str, Any] | None) -> CaseRow:
    row = tx.add(CaseRow(created=tx.now, text=text, content_sha256=sha256_hex(text),
                         source=source, meta=as_plain_dict(metadata or {}, "metadata")))
    tx.log("case_created", case_created_payload(audit.column_values(row)), row.id)
    case_list.on_case(tx.session, row)
    return row


# The payloads of record events, from the row's values by column name: the batch writer
# (app.store.batch) builds the same events from rows it inserts without the ORM.

def case_created_payload(values: dict[str, Any]) -> dict[str, Any]:
    return {"record": audit.cite_values("cases", values),
            "content_sha256": values["content_sha256"], "source": values["source"]}


def ensure_model(tx: Txn, model_id: str, weights_sha256: str | None = None,
                 card: dict[str, Any] | None = None) -> ModelRow:
    """The models row, created on first sight; a later call may fill in what was unknown."""
    row = tx.session.get(ModelRow, model_id)
    if row is None:
        return tx.add(ModelRow(id=model_id, weights_sha256=weights_sha256,
                               card=as_plain_dict(card or {}, "model card"), created=tx.now))
    if weights_sha256 and row.weights_sha256 not in (None, weights_sha256):
        raise InvalidRecord(f"Model {model_id} is stored with weights {row.weights_sha256}, "
                            f"not {weights_sha256}; a retrained model needs a new id.")
    row.weights_sha256 = row.weights_sha256 or weights_sha256
    if card:
        row.card = as_plain_dict(card, "model card")
    return row


@dataclass(frozen=True)
class PredictionFields:
    """A prediction's key columns, checked: what the case list filters and sorts on."""

    data: dict[str, Any]
    label: str
    model_id: str
    confidence: float | None


def prediction_fields(prediction: Prediction) -> PredictionFields:
    data = record_data(prediction, Prediction, "prediction")
    label = _text_field(data, "label", "prediction")
    model_id = _text_field(data, "model_id", "prediction")
    confidence = (data.get("probabilities") or {}).get(label)
    return PredictionFields(data, label, model_id,
                            None if confidence is None else float(confidence))


def escalation_data(decision: EscalationDecision) -> dict[str, Any]:
    data = record_data(decision, EscalationDecision, "escalation decision")
    if data.get("decision") not in ESCALATION_DECISIONS:
        raise InvalidRecord(f"An escalation decision must be one of {ESCALATION_DECISIONS}, "
                            f"not {data.get('decision')!r}.")
    return data


def add_prediction(tx: Txn, case_id: int, prediction: Prediction) -> PredictionRow:
    fields = prediction_fields(prediction)
    ensure_model(tx, fields.model_id)
    row = tx.add(PredictionRow(case_id=case_id, created=tx.now, model_id=fields.model_id,
                               label=fields.label, confidence=fields.confidence,
                               data=fields.data))
    tx.log("predicted", predicted_payload(audit.column_values(row)), case_id)
    case_list.on_prediction(tx.session, row)
    return row


def predicted_payload(values: dict[str, Any]) -> dict[str, Any]:
    return {"record": audit.cite_values("predictions", values), "model_id": values["model_id"],
            "label": values["label"], "confidence": values["confidence"]}


def _prediction_of(tx: Txn, case_id: int, prediction_id: int | None) -> int | None:
    """The prediction a record refers to: the one given (it must be this case's) or the latest."""
    if prediction_id is None:
        latest = reads.latest(tx.session, PredictionRow, case_id)
        return None if latest is None else latest.id
    owner = tx.session.scalar(select(PredictionRow.case_id)
                              .where(PredictionRow.id == prediction_id))
    if owner != case_id:
        raise InvalidRecord(f"Prediction {prediction_id} is not one of case {case_id}'s.")
    return prediction_id


def attribution_values(tx: Txn, case_id: int, attribution: Attribution,
                       prediction_id: int | None) -> dict[str, Any]:
    """The attributions row (by column name, no id yet), checked; ``prediction_id`` is the
    one it explains, already checked to be the case's."""
    data = record_data(attribution, Attribution, "attribution")
    return {"case_id": case_id, "prediction_id": prediction_id, "created": tx.now,
            "label": _text_field(data, "label", "attribution", required=False),
            "method": _text_field(data, "method", "attribution", required=False), "data": data}


def explained_payload(values: dict[str, Any]) -> dict[str, Any]:
    return {"record": audit.cite_values("attributions", values), "label": values["label"],
            "method": values["method"], "prediction_id": values["prediction_id"]}


def add_attribution(tx: Txn, case_id: int, attribution: Attribution,
                    prediction_id: int | None) -> AttributionRow:
    explained = _prediction_of(tx, case_id, prediction_id)
    row = tx.add(AttributionRow(**attribution_values(tx, case_id, attribution, explained)))
    tx.log("explained", explained_payload(audit.column_values(row)), case_id)
    return row


def add_escalation(tx: Txn, case_id: int, decision: EscalationDecision,
                   prediction_id: int | None) -> EscalationRow:
    data = escalation_data(decision)
    row = tx.add(EscalationRow(
        case_id=case_id, prediction_id=_prediction_of(tx, case_id, prediction_id),
        created=tx.now, decision=data["decision"], policy_id=data.get("policy_id"), data=data))
    tx.log("escalated", escalated_payload(audit.column_values(row)), case_id)
    case_list.on_escalation(tx.session, row)
    return row


def escalated_payload(values: dict[str, Any]) -> dict[str, Any]:
    return {"record": audit.cite_values("escalations", values), "decision": values["decision"],
            "reason_codes": values["data"].get("reason_codes", []),
            "policy_id": values["policy_id"], "prediction_id": values["prediction_id"]}


def opinion_values(tx: Txn, case_id: int, opinion: LLMOpinion) -> dict[str, Any]:
    """The llm_opinions row (by column name, no id yet), checked."""
    data = record_data(opinion, LLMOpinion, "LLM opinion")
    return {"case_id": case_id, "created": tx.now,
            "backend": _text_field(data, "backend", "LLM opinion"),
            "model": _text_field(data, "model", "LLM opinion"), "label": data.get("label"),
            "sent_sha256": data.get("sent_sha256"), "data": data}


def asked_payload(values: dict[str, Any]) -> dict[str, Any]:
    # What left for the LLM is part of the record: the text itself, not only its hash.
    data = values["data"]
    return {"record": audit.cite_values(OpinionRow.__tablename__, values),
            "backend": values["backend"], "model": values["model"],
            "base_url": data.get("base_url"), "sent_text": data.get("sent_text"),
            "sent_sha256": values["sent_sha256"], "label": values["label"],
            "error": data.get("error")}


def add_opinion(tx: Txn, case_id: int, opinion: LLMOpinion) -> OpinionRow:
    row = tx.add(OpinionRow(**opinion_values(tx, case_id, opinion)))
    tx.log("llm_asked", asked_payload(audit.column_values(row)), case_id)
    return row


def _reviewer(tx: Txn, name: str) -> ReviewerRow:
    row = tx.session.scalar(select(ReviewerRow).where(ReviewerRow.name == name))
    return row or tx.add(ReviewerRow(name=name, created=tx.now))


def add_review(tx: Txn, case: CaseRow, request: ReviewRequest, expected_sha256: str | None,
               signer: StatementSigner) -> ReviewRow:
    """A review and its electronic signature. The signature covers the chain head as it is
    before this review's events (read under the write lock, so it is exact)."""
    prediction = reads.latest(tx.session, PredictionRow, case.id)
    predicted = None if prediction is None else prediction.label
    labels = [] if prediction is None else list(prediction.data.get("probabilities") or {})
    request = checked(request, predicted, labels)
    version = reads.current_version(tx.session, case)
    if expected_sha256 is not None and expected_sha256 != version:
        raise InvalidReview(f"Case {case.id} changed since it was opened (a new prediction, "
                            "decision or opinion was stored); reopen it and review again.")
    who = signer.signatory
    accounts.check_signer(tx.session, who, request.meaning)
    head_id, head_hash = audit.head(tx.session) or (0, GENESIS_HASH)
    previous = reads.latest(tx.session, ReviewRow, case.id)
    row = tx.add(ReviewRow(
        case_id=case.id, reviewer_id=_reviewer(tx, who.login).id,
        decision=request.decision, label=request.label, reason=request.reason,
        meaning=request.meaning, signed_at=tx.now, case_sha256=version,
        prediction_id=None if prediction is None else prediction.id,
        supersedes_id=None if previous is None else previous.id))
    statement = review_statement(content_of(row, version), who, head_id, head_hash)
    signature = tx.add(SignatureRow(
        review_id=row.id, case_id=case.id, user_id=who.user_id, key_id=who.key_id,
        role=who.role, case_sha256=version, head_id=head_id, head_hash=head_hash,
        signature=signer.sign(statement)))
    tx.log("reviewed", {"record": audit.cite(row), "reviewer": who.login,
                        "full_name": who.full_name, "decision": row.decision,
                        "label": row.label, "reason": row.reason, "meaning": row.meaning,
                        "case_sha256": version, "supersedes_id": row.supersedes_id},
           case.id, actor=who.login)
    tx.log("signed", {"record": audit.cite(signature), "review_id": row.id,
                      "user_id": who.user_id, "key_fingerprint": who.fingerprint,
                      "chain_head": {"id": head_id, "hash": head_hash}}, case.id,
           actor=who.login)
    case_list.on_review(tx.session, row)
    return row
