"""Histories from before accounts (revision 0003): their reviews stay, shown as unsigned
(recorded before accounts); a review added behind the app's back afterwards is named."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.store import audit, case_list, open_store
from app.store.engine import make_engine
from app.store.migrate import downgrade, head_revision, upgrade
from app.store.schema import ReviewerRow, ReviewRow
from tests.helpers.accounts import signer
from tests.store_helpers import prediction


def old_style_review(db, case_id: int, name: str) -> None:
    """A review as revision 0003 wrote it: a typed name, no signature, with its event."""
    engine = make_engine(f"sqlite:///{db}")
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        reviewer = ReviewerRow(name=name, created=now)
        session.add(reviewer)
        session.flush()
        row = ReviewRow(case_id=case_id, reviewer_id=reviewer.id, decision="defer",
                        meaning="reviewed", signed_at=now, case_sha256="0" * 64)
        session.add(row)
        session.flush()
        audit.append(session, "reviewed", name, {"record": audit.cite(row), "reviewer": name},
                     now, case_id)
        case_list.on_review(session, row)
    engine.dispose()


def test_a_0003_history_upgrades_and_keeps_its_unsigned_reviews(db):
    with open_store(db) as store:
        ids = [store.add_case(f"Old case {i}.", prediction=prediction()).case_id
               for i in range(2)]
    engine = make_engine(f"sqlite:///{db}")
    downgrade(engine, "0003")  # today's schema, before accounts
    engine.dispose()
    old_style_review(db, ids[0], "Anyone At All")

    with open_store(db) as store:
        assert head_revision() == "0006"
        result = store.verify_chain()
        assert result.ok and result.unsigned_before_accounts == 1 and result.signatures == 0
        (old,) = store.get_case(ids[0]).reviews
        assert old.recorded_before_accounts and old.signature is None
        assert old.reviewer == "Anyone At All"
        new = store.add_review(ids[1], signer(store, "ann"), "accept")
        assert new.signature.verified and not new.recorded_before_accounts
        assert store.verify_chain().ok

    # after the upgrade, an unsigned review is not "old": it is named
    old_style_review(db, ids[1], "Slipped In")
    with open_store(db) as store:
        result = store.verify_chain()
        assert not result.ok
        (missing,) = [r for r, why in result.bad_signatures if why == "its signature is missing"]
        assert missing == store.get_case(ids[1]).reviews[-1].id


def test_the_upgrade_is_one_step_and_can_be_taken_back(db):
    with open_store(db):
        pass
    engine = make_engine(f"sqlite:///{db}")
    downgrade(engine, "0003")
    upgrade(engine)
    engine.dispose()
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        fact = connection.execute("SELECT value FROM store_facts").fetchall()
    assert {"users", "user_state", "signing_keys", "key_secrets", "signatures",
            "checkpoints", "store_facts"} <= tables
    assert fact == [("0",)]
