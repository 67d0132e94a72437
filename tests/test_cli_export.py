"""``export`` from the command line: cases scored with ``score``, one reviewed with ``review``,
then exported one at a time and by query; a target that cannot be written fails cleanly."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.helpers.accounts import PASSWORD
from tests.helpers.cli import run_cli
from tests.helpers.data import synthetic_rows, write_csv


@pytest.fixture(scope="module")
def scored(trained_home, tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """A case history with 6 scored cases (escalated: the tiny model certifies nothing), the
    newest one reviewed and signed by its admin; shared by the tests, which only add exports
    to it."""
    folder = tmp_path_factory.mktemp("cli-export")
    home = Path(shutil.copytree(trained_home, folder / "home"))
    rows = [{"text": r["text"]} for r in synthetic_rows(2, seed=31)]
    db = folder / "cases.db"
    run_cli(home, "score", str(write_csv(folder / "cases.csv", rows)), "--db", str(db))
    listed = json.loads(run_cli(home, "history", "--json", "--db", str(db)).stdout)
    password = folder / "ann.pw"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    run_cli(home, "users", "add", "ann", "--name", "Ann Archer", "--role", "admin",
            "--new-password-file", str(password), "--db", str(db))
    run_cli(home, "review", str(listed[0]["id"]), "--accept", "--user", "ann",
            "--password-stdin", "--db", str(db), input_text=PASSWORD + "\n")
    return home, db, listed


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(path).pages).split())


def test_export_one_case_and_a_query(scored, tmp_path):
    home, db, listed = scored
    case_id = listed[0]["id"]
    out = tmp_path / "case.pdf"
    answer = json.loads(run_cli(home, "export", "--case", str(case_id), "--out", str(out),
                                "--json", "--db", str(db)).stdout)
    assert set(answer) == {"path", "sha256", "cases", "pages"}
    assert answer["cases"] == 1 and answer["path"] == str(out)
    assert answer["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert answer["pages"] == len(PdfReader(out).pages)
    text = pdf_text(out)
    assert f"Case #{case_id}" in text and "page 1 of" in text
    assert "Signed by Ann Archer (login id ann, admin)" in text and " UTC" in text
    assert "Signature means reviewed" in text and "signature verified (Ed25519, key" in text

    batch = tmp_path / "batch.pdf"
    answer = json.loads(run_cli(home, "export", "--query", "--escalated", "--unreviewed",
                                "--limit", "3", "--out", str(batch), "--json",
                                "--db", str(db)).stdout)
    assert answer["cases"] == 3
    first = " ".join(PdfReader(batch).pages[0].extract_text().split())
    assert "audit report: 3 cases" in first and "escalated, not reviewed" in first
    verified = json.loads(run_cli(home, "audit", "verify", "--json", "--db", str(db)).stdout)
    assert verified["ok"] is True


def test_an_unwritable_target_fails_with_what_to_do_and_writes_nothing(scored, tmp_path):
    home, db, listed = scored
    out = tmp_path / "missing" / "case.pdf"
    result = run_cli(home, "export", "--case", str(listed[0]["id"]), "--out", str(out),
                     "--db", str(db), check=False)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "create it" in result.stderr
    assert not out.parent.exists()
    nothing = run_cli(home, "export", "--query", "--search", "zzzqqq", "--out",
                      str(tmp_path / "none.pdf"), "--db", str(db), check=False)
    assert nothing.returncode != 0 and "No stored case matches" in nothing.stderr
    assert not (tmp_path / "none.pdf").exists()
