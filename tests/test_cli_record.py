"""predict / explain / models --activate / calibrate file their work in the case history, and
a store that cannot take it (locked, read-only, damaged) never loses the printed answer."""

from __future__ import annotations

import json
import sqlite3

from tests.helpers.cli import run_cli

TEXT = "great relief the medicine works"


def _events(home, db) -> list[str]:
    from app.store import open_store

    with open_store(db) as store:
        return [e.kind for e in store.audit_events()]


def test_predict_and_explain_are_stored_with_their_events(home, tmp_path):
    db = tmp_path / "cases.db"
    run_cli(home, "predict", TEXT, "--db", str(db))
    run_cli(home, "explain", TEXT, "--db", str(db))
    listed = json.loads(run_cli(home, "history", "--json", "--db", str(db)).stdout)
    assert len(listed) == 1 and listed[0]["label"] and listed[0]["decision"] == "escalate"
    from app.store import open_store

    with open_store(db) as store:
        case = store.get_case(listed[0]["id"])
        assert len(case.predictions) == 2 and len(case.escalations) == 2  # one per command
        assert case.attribution.data["features"]
        assert store.verify_chain().ok
    kinds = _events(home, db)
    assert {"case_created", "predicted", "escalated", "explained"} <= set(kinds), kinds


def test_no_store_stores_nothing(home, tmp_path):
    db = tmp_path / "cases.db"
    run_cli(home, "predict", TEXT, "--no-store", "--db", str(db))
    assert not db.exists()


def test_activation_and_refit_are_audited(home, tmp_path):
    db = tmp_path / "cases.db"
    (model,) = json.loads(run_cli(home, "models", "--json").stdout)
    run_cli(home, "models", "--activate", model["id"], "--db", str(db))
    run_cli(home, "calibrate", "--alpha", "0.2", "--db", str(db))
    kinds = _events(home, db)
    assert kinds.count("model_activated") == 1 and kinds.count("policy_refitted") == 1


def test_a_locked_store_keeps_the_printed_answer_and_says_how_to_retry(home, tmp_path):
    db = tmp_path / "cases.db"
    run_cli(home, "predict", "first case to create the file", "--db", str(db))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        result = run_cli(home, "predict", TEXT, "--db", str(db), check=False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 3
    assert result.stdout.strip(), "the prediction is printed even though it was not stored"
    assert "NOT stored" in result.stderr and "again" in result.stderr
    run_cli(home, "predict", TEXT, "--db", str(db))  # the retry stores it
    assert len(json.loads(run_cli(home, "history", "--json", "--db", str(db)).stdout)) == 2


def test_a_read_only_store_is_reported(home, tmp_path):
    db = tmp_path / "cases.db"
    run_cli(home, "predict", "first case to create the file", "--db", str(db))
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    result = run_cli(home, "predict", TEXT, "--db", read_only, check=False)
    assert result.returncode == 3 and "read-only" in result.stderr, result.stderr


def test_a_damaged_store_is_reported_and_left_alone(home, tmp_path):
    db = tmp_path / "cases.db"
    db.write_bytes(b"this is not a database, it is a note someone saved here" * 100)
    before = db.read_bytes()
    result = run_cli(home, "predict", TEXT, "--db", str(db), check=False)
    assert result.returncode == 3 and "damaged" in result.stderr.lower(), result.stderr
    assert result.stdout.strip()
    assert db.read_bytes() == before


def _small_disk(path):
    """A 1 MiB tmpfs at ``path`` (needs root, as on the CI machine); None when not allowed."""
    import subprocess

    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
                             capture_output=True)
    return path if mounted.returncode == 0 else None


def test_a_full_disk_is_reported_and_the_answer_kept(home, tmp_path):
    import subprocess

    import pytest

    disk = _small_disk(tmp_path / "disk")
    if disk is None:
        pytest.skip("mounting a small tmpfs needs root; the full-disk path is not exercised")
    try:
        db = disk / "cases.db"
        run_cli(home, "predict", "first case to create the file", "--db", str(db))
        filler = disk / "filler"
        try:
            with open(filler, "wb") as handle:  # take every free byte
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        except OSError:
            pass
        result = run_cli(home, "explain", TEXT + " " + "word " * 200, "--db", str(db),
                         check=False)
        assert result.returncode == 3 and "full" in result.stderr, result.stderr
        assert result.stdout.strip()
        filler.unlink()
        run_cli(home, "audit", "verify", "--db", str(db))  # nothing half-written
    finally:
        subprocess.run(["umount", str(disk)], check=False)
