"""The case history from the command line: score (resumable), history, review, audit verify."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

from app.store import open_store
from tests.helpers.accounts import PASSWORD, signer
from tests.helpers.cli import run_cli
from tests.helpers.data import PROJECT_ROOT, synthetic_rows, write_csv


def test_score_history_review_and_verify(home, tmp_path):
    rows = [{"text": r["text"]} for r in synthetic_rows(3, seed=21)]
    cases = write_csv(tmp_path / "cases.csv", [*rows, {"text": ""}])
    db = tmp_path / "cases.db"
    first = json.loads(run_cli(home, "score", str(cases), "--json", "--db",
                               str(db)).stdout.splitlines()[-1])
    assert first["stored"] == 9 and first["skipped"] == 0 and first["failed"] == 0
    assert first["escalated"] == 9  # the tiny model's policy certifies nothing
    again = json.loads(run_cli(home, "score", str(cases), "--json", "--db",
                               str(db)).stdout.splitlines()[-1])
    assert (again["stored"], again["skipped"]) == (0, 9)
    listed = json.loads(run_cli(home, "history", "--json", "--db", str(db)).stdout)
    assert len(listed) == 9
    assert set(listed[0]) >= {"id", "created", "label", "decision", "review"}
    word = rows[0]["text"].split()[0]
    found = json.loads(run_cli(home, "history", "--json", "--search", word, "--db",
                               str(db)).stdout)
    assert found and all(word in r["preview"] for r in found)
    case_id = listed[0]["id"]
    refused = run_cli(home, "review", str(case_id), "--override", "neutral", "--db", str(db),
                      check=False)
    assert refused.returncode == 2 and "reason" in refused.stderr
    label = "neutral" if listed[0]["label"] != "neutral" else "positive"
    with open_store(db) as store:
        signer(store, "ann")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    signed = json.loads(run_cli(home, "review", str(case_id), "--override", label, "--reason",
                                "the text is mixed", "--user", "ann", "--password-file",
                                str(secret), "--json", "--db", str(db)).stdout)
    assert signed["decision"] == "override" and signed["reviewer"] == "ann"
    assert signed["signature"]["problem"] is None
    listed = json.loads(run_cli(home, "history", "--json", "--db", str(db)).stdout)
    assert next(r for r in listed if r["id"] == case_id)["review"]["label"] == label
    overridden = json.loads(run_cli(home, "history", "--json", "--decision", "override",
                                    "--reviewer", "ann", "--db", str(db)).stdout)
    assert [r["id"] for r in overridden] == [case_id]
    unreviewed = json.loads(run_cli(home, "history", "--json", "--unreviewed", "--db",
                                    str(db)).stdout)
    assert len(unreviewed) == 8 and case_id not in {r["id"] for r in unreviewed}
    verified = json.loads(run_cli(home, "audit", "verify", "--json", "--db", str(db)).stdout)
    assert verified["ok"] is True and verified["events"] > 9 and verified["first_broken"] is None


def test_audit_verify_catches_a_row_changed_behind_the_apps_back(home, tmp_path):
    cases = write_csv(tmp_path / "cases.csv", [{"text": "awful rash"}, {"text": "great relief"}])
    db = tmp_path / "cases.db"
    run_cli(home, "score", str(cases), "--no-explain", "--db", str(db))
    with sqlite3.connect(db) as raw:
        triggers = [name for (name,) in raw.execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit_events'")]
        for name in triggers:  # what an attacker with the file would do first
            raw.execute(f'DROP TRIGGER "{name}"')
        victim = raw.execute("SELECT id FROM audit_events ORDER BY id LIMIT 1 OFFSET 2"
                             ).fetchone()[0]
        raw.execute("UPDATE audit_events SET actor='mallory' WHERE id=?", (victim,))
    result = run_cli(home, "audit", "verify", "--json", "--db", str(db), check=False)
    verdict = json.loads(result.stdout)
    assert result.returncode == 1 and verdict["ok"] is False
    assert verdict["first_broken"] == victim


def test_a_killed_batch_resumes_without_half_stored_cases(home, tmp_path):
    rows = [{"text": r["text"]} for r in synthetic_rows(30, seed=5)]  # 90 cases
    cases = write_csv(tmp_path / "cases.csv", rows)
    db = tmp_path / "cases.db"
    env = {**os.environ, "CASEWISE_HOME": str(home), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "main.py", "score", str(cases), "--db", str(db)],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as raw:
                    stored = raw.execute("SELECT count(*) FROM cases").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
        if stored >= 3:
            break
        time.sleep(0.2)
    process.kill()
    process.wait()
    assert 0 < stored < 90, "the batch should have been killed part-way"
    with sqlite3.connect(db) as raw:
        half = raw.execute("SELECT count(*) FROM cases WHERE id NOT IN "
                           "(SELECT case_id FROM predictions) OR id NOT IN "
                           "(SELECT case_id FROM escalations)").fetchone()[0]
        before = raw.execute("SELECT count(*) FROM cases").fetchone()[0]
    assert half == 0
    resumed = json.loads(run_cli(home, "score", str(cases), "--json", "--db",
                                 str(db)).stdout.splitlines()[-1])
    # Cases stored without their attribution (killed while explaining) are finished, not
    # skipped for ever: every case ends whole.
    assert resumed["skipped"] + resumed["completed"] == before
    assert resumed["stored"] + before == 90
    with sqlite3.connect(db) as raw:
        unexplained = raw.execute("SELECT count(*) FROM cases WHERE id NOT IN "
                                  "(SELECT case_id FROM attributions)").fetchone()[0]
    assert unexplained == 0
    verified = json.loads(run_cli(home, "audit", "verify", "--json", "--db", str(db)).stdout)
    assert verified["ok"] is True
