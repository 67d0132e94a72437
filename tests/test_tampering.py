"""Tampering behind the app's back, as someone who can write the database would do it (the
SQLite file, or a PostgreSQL database as its owner): raw SQL, the append-only triggers dropped,
and every hash recomputed with the app's own functions. ``audit verify`` must name what was
done (issue 13's adversarial probe, made tests), on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.accounts.installation import installation_key
from app.accounts.keys import fingerprint_of, new_key_pair
from app.accounts.statements import Signatory, review_statement
from app.store import audit, open_store
from app.store.canonical import GENESIS_HASH
from app.store.engine import make_engine
from app.store.schema import AuditEventRow, ReviewRow, SignatureRow, UserRow
from app.store.signature_check import content_of
from app.store.verify import parse_head
from tests.helpers.accounts import signer
from tests.helpers.raw_sql import drop_guard, raw_sql, trigger_names, url_of
from tests.store_helpers import prediction

pytestmark = pytest.mark.both_backends


@pytest.fixture()
def signed(history: Path | str, tmp_path: Path) -> dict:
    """A history with four cases, each reviewed (ann, bob, ann, bob), checkpointed at close."""
    with open_store(history, actor="tester") as store:
        store.set_anchor(installation_key(tmp_path / "config"))
        ann, bob = signer(store, "ann"), signer(store, "bob")
        reviews = []
        for i, who in enumerate((ann, bob, ann, bob)):
            case_id = store.add_case(f"Case {i}: a rash after the drug.",
                                     prediction=prediction()).case_id
            reviews.append(store.add_review(case_id, who, "accept"))
        store.record_model_activated("m1", "f" * 64)
        head = store.chain_head()
    return {"reviews": reviews, "head": head, "config": tmp_path / "config"}


def verify(history: Path, against=None):
    with open_store(history, daily_backup=False) as store:
        return store.verify_chain(against=against)


def sql(history: Path | str, *statements: str, params: tuple = ()) -> None:
    """Raw SQL in autocommit; ``?`` marks take ``params`` in order."""
    engine = create_engine(url_of(history), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for statement in statements:
                named, values = statement, {}
                for i, value in enumerate(params if "?" in statement else ()):
                    named = named.replace("?", f":p{i}", 1)
                    values[f"p{i}"] = value
                connection.execute(text(named), values)
    finally:
        engine.dispose()


def drop_guards(history: Path | str) -> None:
    names = sorted(name for name in trigger_names(history) if "_no_" in name)
    sql(history, *(drop_guard(history, *name.rsplit("_no_", 1)) for name in names))


def rewrite_chain(history: Path, from_id: int = 1) -> None:
    """Recompute every cited record hash and every event hash from ``from_id`` on, with the
    app's own hash functions: the rewrite a bare hash chain cannot detect."""
    models = {model.__tablename__: model for model in audit.RECORD_EVENTS.values()}
    engine = make_engine(url_of(history))
    with Session(engine) as session:
        prev = session.scalar(select(AuditEventRow.hash)
                              .where(AuditEventRow.id == from_id - 1)) or GENESIS_HASH
        rows = session.execute(select(AuditEventRow.__table__)
                               .where(AuditEventRow.id >= from_id)
                               .order_by(AuditEventRow.id)).all()
        for row in rows:
            payload = json.loads(row.payload)
            cited = payload.get("record")
            if cited:
                record = session.get(models[cited["table"]], cited["id"])
                if record is not None:
                    cited["sha256"] = audit.row_sha256(record)
            fields = {**row._mapping, "payload": payload, "prev_hash": prev}
            new_hash = audit.event_hash(fields)
            session.execute(text("UPDATE audit_events SET payload = :p, prev_hash = :prev, "
                                 "hash = :h WHERE id = :id"),
                            {"p": audit.canonical_json(payload), "prev": prev, "h": new_hash,
                             "id": row.id})
            prev = new_hash
        session.commit()
    engine.dispose()


def event_of(history: Path | str, kind: str, review_id: int) -> int:
    for event_id, payload in raw_sql(history, f"SELECT id, payload FROM audit_events "
                                         f"WHERE kind = '{kind}' ORDER BY id"):
        if json.loads(payload)["record"]["id"] == review_id:
            return event_id
    raise AssertionError(f"no {kind} event for {review_id}")


def test_a_clean_history_verifies_and_is_anchored(history, signed):
    result = verify(history)
    assert result.ok and result.signatures == 4 and not result.bad_signatures
    assert result.unanchored_events == 0 and result.anchored_to == result.events


def test_editing_a_review_and_recomputing_the_chain_breaks_every_later_signature(history, signed):
    """The attack that passed ``audit verify`` before signatures: change a signed review's
    reason, recompute its record hash and every later event hash."""
    first, *later = signed["reviews"]
    drop_guards(history)
    sql(history, "UPDATE reviews SET reason = 'changed after signing' WHERE id = ?",
        params=(first.id,))
    rewrite_chain(history)
    result = verify(history)
    assert not result.ok
    bad = dict(result.bad_signatures)
    assert set(bad) == {r.id for r in signed["reviews"]}
    assert "does not verify" in bad[first.id]
    for review in later:  # their chain heads are events that were rewritten
        assert "audit chain it signed was rewritten" in bad[review.id]
    assert any("checkpoint" in p and "rewritten" in p for p in result.problems)


def test_editing_an_earlier_event_breaks_exactly_the_signatures_made_after_it(history, signed):
    reviews = signed["reviews"]
    target = event_of(history, "reviewed", reviews[2].id) - 2  # an event of the third case
    drop_guards(history)
    sql(history, f"UPDATE audit_events SET actor = 'mallory' WHERE id = {target}")
    rewrite_chain(history, target)
    bad = dict(verify(history).bad_signatures)
    assert set(bad) == {reviews[2].id, reviews[3].id}  # the first two signed older heads


def test_renaming_a_signer_is_caught(history, signed):
    drop_guards(history)
    sql(history, "UPDATE users SET full_name = 'Mallory Impostor' WHERE login = 'ann'")
    rewrite_chain(history)  # even with the users row's hash recomputed in its event
    result = verify(history)
    ann_reviews = {r.id for r in signed["reviews"] if r.reviewer == "ann"}
    assert ann_reviews <= set(dict(result.bad_signatures))
    with open_store(history, daily_backup=False) as store:
        (review,) = store.get_case(signed["reviews"][0].case_id).reviews
        assert not review.signature.verified and "does not verify" in review.signature.problem


def test_renaming_a_reviewer_row_is_caught(history, signed):
    drop_guards(history)
    sql(history, "UPDATE reviewers SET name = 'mallory' WHERE name = 'ann'")
    result = verify(history)
    assert not result.ok and any("reviewers table names" in why
                                 for _, why in result.bad_signatures)


def test_deleting_the_newest_review_with_its_events_is_caught_by_the_checkpoint(history, signed):
    newest = signed["reviews"][-1]
    drop_guards(history)
    reviewed = event_of(history, "reviewed", newest.id)
    sql(history, f"DELETE FROM audit_events WHERE id >= {reviewed}",
        f"DELETE FROM signatures WHERE review_id = {newest.id}",
        f"DELETE FROM case_latest WHERE review_id = {newest.id}",
        f"DELETE FROM reviews WHERE id = {newest.id}")
    result = verify(history)
    assert not result.ok
    assert any("is missing" in p and "events were deleted" in p for p in result.problems)


def test_a_raised_before_accounts_marker_does_not_excuse_a_later_unsigned_review(history, signed):
    """The marker of the last review made before accounts is a plain row: raising it must not
    pass off a newer review, its signature deleted, as "recorded before accounts"."""
    newest = signed["reviews"][-1]
    drop_guards(history)
    sql(history, f"DELETE FROM signatures WHERE review_id = {newest.id}",
        "UPDATE store_facts SET value = '999999' WHERE name = 'accounts_from_review_id'")
    result = verify(history)
    assert not result.ok and result.unsigned_before_accounts == 0
    assert (newest.id, "its signature is missing") in result.bad_signatures


def test_deleting_the_last_app_event_is_caught_by_the_checkpoint(history, signed):
    drop_guards(history)
    sql(history, "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)")
    result = verify(history)
    assert not result.ok and "events were deleted" in result.reason


def test_events_after_the_last_checkpoint_are_reported_as_not_yet_anchored(history, signed):
    with open_store(history, daily_backup=False) as store:  # no installation key: no checkpoint
        store.record_policy_refitted("m1", "p-9")
    result = verify(history)
    assert result.ok and result.unanchored_events == 1


def test_dropping_the_guards_is_reported(history, signed):
    drop_guards(history)
    result = verify(history)
    assert not result.ok and "append-only guards were removed" in result.reason
    assert "reviews_no_update" in result.reason and "users_no_delete" in result.reason


def test_swapping_a_public_key_and_resigning_is_caught(history, signed):
    """Mallory replaces ann's public key with her own, re-signs ann's reviews and recomputes
    the chain: bob's later signature and the checkpoint still name the rewrite."""
    mallory = new_key_pair()
    drop_guards(history)
    sql(history, "UPDATE signing_keys SET public_key = ?, fingerprint = ? WHERE label LIKE 'ann%'",
        params=(mallory.public_hex, fingerprint_of(mallory.public_hex)))
    engine = make_engine(url_of(history))
    with Session(engine) as session:
        ann = session.scalar(select(UserRow).where(UserRow.login == "ann"))
        for review, sig in session.execute(select(ReviewRow, SignatureRow).join(
                SignatureRow, SignatureRow.review_id == ReviewRow.id)
                .where(SignatureRow.user_id == ann.id)):
            who = Signatory(ann.id, ann.login, ann.full_name, sig.role, sig.key_id,
                            mallory.fingerprint)
            statement = review_statement(content_of(review, sig.case_sha256), who,
                                         sig.head_id, sig.head_hash)
            session.execute(text("UPDATE signatures SET signature = :s WHERE id = :id"),
                            {"s": mallory.private.sign(statement).hex(), "id": sig.id})
        session.commit()
    engine.dispose()
    rewrite_chain(history)
    result = verify(history)
    bad = dict(result.bad_signatures)
    assert not result.ok and signed["reviews"][3].id in bad  # bob's, over a rewritten head
    assert any("checkpoint" in p for p in result.problems)


def test_a_signature_copied_onto_another_review_is_named(history, signed):
    first, second = signed["reviews"][:2]
    drop_guards(history)
    sql(history, f"DELETE FROM signatures WHERE review_id = {second.id}",
        f"UPDATE signatures SET review_id = {second.id} WHERE review_id = {first.id}")
    bad = dict(verify(history).bad_signatures)
    assert "copied onto this review" in bad[second.id]
    assert bad[first.id] == "its signature is missing"


def test_against_proves_a_published_head_is_still_there(history, signed):
    event_id, digest = signed["head"]
    assert verify(history, against=(event_id, digest)).against
    drop_guards(history)
    sql(history, "UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
    rewrite_chain(history)
    result = verify(history, against=(event_id, digest))
    assert not result.ok and result.against is None
    assert any("is not in the history" in p for p in result.problems)
    with pytest.raises(ValueError, match="ID:HASH"):
        parse_head("12:abc")


def test_checkpoints_are_signed_every_n_events_without_a_write_at_open(history, tmp_path):
    key = installation_key(tmp_path / "config")
    with open_store(history) as store:
        store.set_anchor(key)  # registers the key: one event
    with open_store(history) as store:
        events = len(store.audit_events())
        store.set_anchor(key)  # known already: nothing written
        assert len(store.audit_events()) == events
        store.checkpoint_every = 5
        for i in range(4):
            store.add_case(f"Case {i}.", prediction=prediction())  # 2 events each
        assert store.verify_chain().anchored_to == 7  # the write that passed 5 after event 1
    assert verify(history).unanchored_events == 0  # and the close anchored the rest


def test_an_export_is_anchored_at_once(history, tmp_path):
    """A checkpoint is signed right after the export event, so the head an export prints is
    anchored before the history is closed (an export is the moment a record leaves)."""
    with open_store(history, actor="tester") as store:
        store.set_anchor(installation_key(tmp_path / "config"))
        store.checkpoint_every = 10_000  # no count-based checkpoint in the way
        case_id = store.add_case("A rash after the drug.", prediction=prediction()).case_id
        event = store.record_export(str(tmp_path / "case.pdf"), "0" * 64, [case_id])
        checked = store.verify_chain()
        assert checked.anchored_to == event.id and checked.unanchored_events == 0
