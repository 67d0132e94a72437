"""Many cases in one transaction: batch scoring and imports.

``add_case`` pays per case for a transaction and for reading the chain's last link before
each event (about 190 cases a second). Here the whole batch is one transaction, rows go in
as multi-row ``INSERT ... RETURNING`` (the ids are needed: events cite them) and the chain
head is kept in memory. The rows and events are exactly those ``add_case`` writes, in the
same order per case (case_created, predicted, escalated), so ``verify_chain`` cannot tell
the two paths apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from app.store import audit, case_list, reads, writes
from app.store.canonical import as_plain_dict, sha256_hex
from app.store.errors import InvalidRecord
from app.store.queries import summaries, summary_of
from app.store.records import CaseSummary, CaseWrite
from app.store.schema import (
    AttributionRow,
    AuditEventRow,
    CaseLatestRow,
    CaseRow,
    EscalationRow,
    OpinionRow,
    PredictionRow,
)
from explainers.types import Attribution, LLMOpinion
from models.types import EscalationDecision, Prediction

LOOKUP_CHUNK = 500  # content hashes per IN (...) when looking for stored duplicates


@dataclass(frozen=True)
class NewCase:
    """One case for ``CaseRepository.add_cases``: what ``add_case`` takes, as one value."""

    text: str
    source: str = "typed"
    metadata: dict[str, Any] | None = None
    prediction: Prediction | None = None
    escalation: EscalationDecision | None = None


@dataclass(frozen=True)
class _Checked:
    """An item after validation: everything that can refuse it has run, nothing is written."""

    text: str
    sha256: str
    source: str
    metadata: dict[str, Any]
    prediction: writes.PredictionFields | None
    escalation: dict[str, Any] | None


def _checked(item: NewCase, position: int) -> _Checked:
    if not isinstance(item.text, str) or not item.text.strip():
        raise InvalidRecord(f"Case {position} of the batch has no text; a case needs some.")
    return _Checked(
        text=item.text, sha256=sha256_hex(item.text), source=item.source,
        metadata=as_plain_dict(item.metadata or {}, "metadata"),
        prediction=None if item.prediction is None else writes.prediction_fields(item.prediction),
        escalation=None if item.escalation is None else writes.escalation_data(item.escalation))


def add_cases(tx: writes.Txn, items: Iterable[NewCase]) -> list[CaseWrite]:
    """Store the new cases of ``items`` with their records and events; one CaseWrite per item,
    in order. A text already stored, or met earlier in the batch, is skipped (``new=False``)
    and nothing else of that item is stored, as ``add_case`` does."""
    checked = [_checked(_new_case(item, n), n) for n, item in enumerate(items, start=1)]
    stored = dict(_stored_ids(tx.session, {c.sha256 for c in checked}))
    fresh: dict[str, _Checked] = {}
    for case in checked:
        if case.sha256 not in stored:
            fresh.setdefault(case.sha256, case)  # the first copy in the batch is the new one
    written = _write(tx, list(fresh.values()))
    ids = {**stored, **{sha: w.case_id for sha, w in written.items()}}
    old = _old_writes(tx.session, {sha: ids[sha] for sha in stored})
    summary = _summaries(tx.session, list(ids.values()))
    out = []
    for case in checked:
        new = fresh.get(case.sha256) is case
        write = written[case.sha256] if case.sha256 in written else old[case.sha256]
        out.append(replace(write, new=new, record_ids=write.record_ids if new else {},
                           summary=summary[write.case_id]))
    return out


def _new_case(item: NewCase, position: int) -> NewCase:
    if not isinstance(item, NewCase):
        raise InvalidRecord(f"Case {position} of the batch is a {type(item).__name__}, not a "
                            "NewCase.")
    return item


def _old_writes(session: Session, ids: dict[str, int]) -> dict[str, CaseWrite]:
    """Cases of the batch that were already stored: their current version, nothing new."""
    versions = reads.current_versions(session, list(ids.values()))
    return {sha: CaseWrite(case_id, False, {}, versions[case_id])
            for sha, case_id in ids.items()}


def _summaries(session: Session, ids: list[int]) -> dict[int, CaseSummary]:
    found = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        rows = session.execute(summaries(ids[start:start + LOOKUP_CHUNK]))
        found.update({row.id: summary_of(row) for row in rows})
    return found


def _stored_ids(session: Session, hashes: set[str]) -> Iterator[tuple[str, int]]:
    ordered = sorted(hashes)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        chunk = ordered[start:start + LOOKUP_CHUNK]
        yield from session.execute(select(CaseRow.content_sha256, CaseRow.id)
                                   .where(CaseRow.content_sha256.in_(chunk)))


def _write(tx: writes.Txn, fresh: list[_Checked]) -> dict[str, int]:
    """Insert the cases, then their predictions, then their escalations (each table in case
    order, so events of one kind cite ids in order, as ``verify`` expects), then the events
    case by case."""
    for model_id in sorted({c.prediction.model_id for c in fresh if c.prediction}):
        writes.ensure_model(tx, model_id)
    cases = _insert(tx.session, CaseRow.__table__, [_case_values(tx, c) for c in fresh])
    predictions = _insert(tx.session, PredictionRow.__table__, [
        _prediction_values(tx, case_row["id"], c.prediction)
        for case_row, c in zip(cases, fresh, strict=True) if c.prediction])
    predicted = iter(predictions)
    prediction_of = {c.sha256: next(predicted) for c in fresh if c.prediction}
    escalations = _insert(tx.session, EscalationRow.__table__, [
        _escalation_values(tx, case_row["id"], prediction_of.get(c.sha256), c.escalation)
        for case_row, c in zip(cases, fresh, strict=True) if c.escalation])
    escalated = iter(escalations)
    escalation_of = {c.sha256: next(escalated) for c in fresh if c.escalation}
    written = [(case_row, prediction_of.get(c.sha256), escalation_of.get(c.sha256))
               for case_row, c in zip(cases, fresh, strict=True)]
    _log(tx, written)
    _list(tx.session, written)
    return {case_row["content_sha256"]: _case_write(case_row, prediction, escalation)
            for case_row, prediction, escalation in written}


def _case_write(case: dict[str, Any], prediction: dict[str, Any] | None,
                escalation: dict[str, Any] | None) -> CaseWrite:
    """The write of a new case, its version computed from the values just inserted (the
    same hash ``reads.current_version`` would compute from the rows)."""
    cited = {"prediction": (prediction, "predictions"), "escalation": (escalation, "escalations")}
    latest = {kind: None if values is None else _Cited(values["id"], audit.cite_values(
        table, values)["sha256"]) for kind, (values, table) in cited.items()}
    version = reads.version_sha256(case["id"], case["content_sha256"],
                                   {**latest, "attribution": None, "opinion": None})
    ids = {kind: values["id"] for kind, (values, _t) in cited.items() if values is not None}
    return CaseWrite(case["id"], True, ids, version)


@dataclass(frozen=True)
class _Cited:
    id: int
    sha256: str


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``rows`` (values by column name) and give each its new id, in order."""
    if not rows:
        return rows
    result = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    for row, new_id in zip(rows, result.scalars(), strict=True):
        row["id"] = new_id
    return rows


def _case_values(tx: writes.Txn, case: _Checked) -> dict[str, Any]:
    return {"created": tx.now, "text": case.text, "content_sha256": case.sha256,
            "source": case.source, "metadata": case.metadata}


def _prediction_values(tx: writes.Txn, case_id: int,
                       prediction: writes.PredictionFields) -> dict[str, Any]:
    return {"case_id": case_id, "created": tx.now, "model_id": prediction.model_id,
            "label": prediction.label, "confidence": prediction.confidence,
            "data": prediction.data}


def _escalation_values(tx: writes.Txn, case_id: int, prediction: dict[str, Any] | None,
                       data: dict[str, Any]) -> dict[str, Any]:
    return {"case_id": case_id, "prediction_id": None if prediction is None else prediction["id"],
            "created": tx.now, "decision": data["decision"], "policy_id": data.get("policy_id"),
            "data": data}


Written = list[tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]]


def _list(session: Session, written: Written) -> None:
    """The case list rows: the batch's records are each case's only, hence its latest."""
    rows = []
    for case, prediction, escalation in written:
        row = case_list.values_for_new_case(case["id"], case["created"])
        if prediction is not None:
            row.update(label=prediction["label"], confidence=prediction["confidence"],
                       model_id=prediction["model_id"])
        if escalation is not None:
            row["escalation"] = escalation["decision"]
        rows.append(row)
    if rows:
        session.execute(insert(CaseLatestRow.__table__), rows)


def _log(tx: writes.Txn, written: Written) -> None:
    chain = audit.Chain(tx.session)
    events = []
    for case, prediction, escalation in written:
        events.append(chain.link("case_created", tx.actor, writes.case_created_payload(case),
                                 tx.now, case["id"]))
        if prediction is not None:
            events.append(chain.link("predicted", tx.actor,
                                     writes.predicted_payload(prediction), tx.now, case["id"]))
        if escalation is not None:
            events.append(chain.link("escalated", tx.actor,
                                     writes.escalated_payload(escalation), tx.now, case["id"]))
    if events:
        tx.session.execute(insert(AuditEventRow.__table__),
                           [audit.event_row(event) for event in events])


def add_records(tx: writes.Txn, items: list[tuple[int, Any]]) -> dict[int, dict[str, int]]:
    """Attributions and opinions of many cases (each attribution explains its case's latest
    prediction): multi-row inserts and the chain head in memory; the rows and events are
    exactly those ``add_attribution`` and ``add_opinion`` write, in the order given. The ids
    written, by case and kind."""
    latest = _latest_predictions(tx.session, sorted({case_id for case_id, _r in items}))
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for case_id, record in items:
        if type(record) is Attribution:
            values = writes.attribution_values(tx, case_id, record, latest.get(case_id))
            rows.append(("attribution", case_id, values))
        elif type(record) is LLMOpinion:
            rows.append(("opinion", case_id, writes.opinion_values(tx, case_id, record)))
        else:
            raise InvalidRecord(f"record_many stores attributions and opinions, not "
                                f"{type(record).__name__}.")
    _insert(tx.session, AttributionRow.__table__, [v for k, _c, v in rows if k == "attribution"])
    _insert(tx.session, OpinionRow.__table__, [v for k, _c, v in rows if k == "opinion"])
    chain, events, ids = audit.Chain(tx.session), [], {}
    for kind, case_id, values in rows:
        event, payload = (("explained", writes.explained_payload) if kind == "attribution"
                          else ("llm_asked", writes.asked_payload))
        events.append(chain.link(event, tx.actor, payload(values), tx.now, case_id))
        ids.setdefault(case_id, {})[kind] = values["id"]
    if events:
        tx.session.execute(insert(AuditEventRow.__table__),
                           [audit.event_row(event) for event in events])
    return ids


def _latest_predictions(session: Session, case_ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(case_ids), LOOKUP_CHUNK):
        chunk = case_ids[start:start + LOOKUP_CHUNK]
        found.update(session.execute(
            select(PredictionRow.case_id, func.max(PredictionRow.id))
            .where(PredictionRow.case_id.in_(chunk)).group_by(PredictionRow.case_id)).all())
    return found
