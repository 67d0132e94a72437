"""The accounts from the terminal: ``users``, ``review`` with a password that is never an
argument, and ``audit verify`` naming what it found. Real subprocesses where the terminal
matters (standard input), in-process runs elsewhere."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.store import open_store
from tests.helpers.accounts import PASSWORD
from tests.helpers.cli import run_cli, run_main
from tests.store_helpers import prediction

OTHER = "bob's own long passphrase"


@pytest.fixture()
def history(casewise_home, tmp_path):
    """A history with one admin (ada), one reviewer (bob) and two scored cases; the
    passwords in 0600 files, as a script would keep them."""
    files = {}
    for name, secret in (("ada", PASSWORD), ("bob", OTHER)):
        path = tmp_path / f"{name}.pw"
        path.write_text(secret + "\n")
        path.chmod(0o600)
        files[name] = str(path)
    db = casewise_home / "casewise.db"
    casewise_home.mkdir(parents=True, exist_ok=True)
    with open_store(db) as store:
        for i in range(2):
            store.add_case(f"Case {i}: a rash after the drug.", prediction=prediction())
    return casewise_home, files


def test_users_add_list_and_review_signed_with_a_password_file(history, capsys):
    _home, pw = history
    out = run_main(["users", "add", "ada", "--name", "Ada Admin",
                    "--new-password-file", pw["ada"]], capsys).out
    assert "user ada (Ada Admin, admin) added" in out
    run_main(["users", "add", "bob", "--name", "Bob Baker", "--role", "reviewer",
              "--user", "ada", "--password-file", pw["ada"], "--new-password-file",
              pw["bob"]], capsys)
    listed = json.loads(run_main(["users", "list", "--json"], capsys).out)
    assert [(u["login"], u["role"]) for u in listed] == [("ada", "admin"), ("bob", "reviewer")]
    assert not any("hash" in key or "sealed" in key for key in listed[0])

    out = run_main(["review", "1", "--accept", "--user", "bob", "--password-file", pw["bob"]],
                   capsys).out
    assert "signed by Bob Baker (bob), meaning reviewed" in out and "UTC" in out
    assert "signature verified (Ed25519, key" in out
    # a reviewer may not sign "approved", and is told who may
    refused = run_main(["review", "2", "--accept", "--meaning", "approved", "--user", "bob",
                        "--password-file", pw["bob"]], capsys, code=2)
    assert "needs an approver" in refused.err
    # nor create users
    refused = run_main(["users", "add", "eve", "--name", "Eve", "--user", "bob",
                        "--password-file", pw["bob"], "--new-password-file", pw["bob"]],
                       capsys, code=2)
    assert "Only an admin may create users" in refused.err and "Admins: ada" in refused.err
    verified = run_main(["audit", "verify"], capsys).out
    assert "signatures: 1 checked, 0 bad" in verified


def test_review_reads_the_password_from_standard_input_and_never_from_arguments(history,
                                                                                 capsys):
    casewise_home, pw = history
    run_main(["users", "add", "ada", "--name", "Ada Admin", "--new-password-file", pw["ada"]],
             capsys)
    result = run_cli(casewise_home, "review", "1", "--defer", "--user", "ada",
                     "--password-stdin", input_text=PASSWORD + "\n")
    assert "signature verified" in result.stdout
    wrong = run_cli(casewise_home, "review", "2", "--defer", "--user", "ada",
                    "--password-stdin", input_text="not it at all\n", check=False)
    assert wrong.returncode == 2 and "Wrong password for 'ada'; 4 attempt(s) left" in wrong.stderr
    # no terminal and no password source: a clear message, not a hang
    none = run_cli(casewise_home, "review", "2", "--defer", "--user", "ada", check=False,
                   input_text="")
    assert none.returncode == 2 and "--password-file" in none.stderr
    with pytest.raises(SystemExit):  # there is no option that takes a password
        run_main(["review", "1", "--accept", "--password", PASSWORD], capsys)


def test_passwd_changes_and_an_admin_resets(history, capsys, tmp_path):
    _home, pw = history
    run_main(["users", "add", "ada", "--name", "Ada Admin", "--new-password-file", pw["ada"]],
             capsys)
    run_main(["users", "add", "bob", "--name", "Bob Baker", "--user", "ada", "--password-file",
              pw["ada"], "--new-password-file", pw["bob"]], capsys)
    fresh = tmp_path / "fresh.pw"
    fresh.write_text("a brand new passphrase\n")
    fresh.chmod(0o600)
    out = run_main(["users", "passwd", "--user", "bob", "--password-file", pw["bob"],
                    "--new-password-file", str(fresh)], capsys).out
    assert "password of bob changed; same signing key" in out
    out = run_main(["users", "passwd", "--reset", "bob", "--user", "ada", "--password-file",
                    pw["ada"], "--new-password-file", pw["bob"]], capsys).out
    assert "new signing key" in out and "unlocked" in out
    run_main(["users", "disable", "bob", "--user", "ada", "--password-file", pw["ada"]],
             capsys)
    refused = run_main(["review", "1", "--defer", "--user", "bob", "--password-file",
                        pw["bob"]], capsys, code=2)
    assert "disabled" in refused.err


def test_audit_verify_names_a_broken_signature_and_proves_a_head(history, capsys):
    casewise_home, pw = history
    run_main(["users", "add", "ada", "--name", "Ada Admin", "--new-password-file", pw["ada"]],
             capsys)
    run_main(["review", "1", "--accept", "--user", "ada", "--password-file", pw["ada"]], capsys)
    with open_store(casewise_home / "casewise.db") as store:
        head = store.chain_head()
    proved = run_main(["audit", "verify", "--against", f"{head[0]}:{head[1]}"], capsys).out
    assert f"still holds event {head[0]}" in proved and "anchored by a signed checkpoint" in proved
    with sqlite3.connect(casewise_home / "casewise.db") as connection:
        connection.execute("DROP TRIGGER reviews_no_update")
        connection.execute("UPDATE reviews SET meaning = 'approved' WHERE id = 1")
    broken = run_main(["audit", "verify"], capsys, code=1).out
    assert "review 1:" in broken and "reviews_no_update" in broken
    bad_head = run_main(["audit", "verify", "--against", "12:abc"], capsys, code=2)
    assert "ID:HASH" in bad_head.err


def test_activating_a_model_needs_an_admin_once_there_are_accounts(home, tmp_path, capsys):
    """``models --activate`` (and train, calibrate) before accounts: anyone; after: an admin,
    whose login the activation event names."""
    from app.store import open_store as open_history
    from tests.helpers.accounts import signer

    model_id = json.loads(run_cli(home, "models", "--json").stdout)[0]["id"]
    run_cli(home, "models", "--activate", model_id)  # no accounts yet
    with open_history(home / "casewise.db") as store:
        signer(store, "ann", role="approver")  # makes the admin "admin" first
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    refused = run_cli(home, "models", "--activate", model_id, "--user", "ann",
                      "--password-file", str(secret), check=False)
    assert refused.returncode == 2 and "Only an admin may activate a model" in refused.stderr
    refused = run_cli(home, "calibrate", "--user", "ann", "--password-file", str(secret),
                      check=False)
    assert refused.returncode == 2 and "Only an admin may change the escalation policy" \
        in refused.stderr
    run_cli(home, "models", "--activate", model_id, "--user", "admin", "--password-file",
            str(secret))
    with open_history(home / "casewise.db") as store:
        (*_, activated) = store.audit_events(kind="model_activated")
        assert activated.actor == "admin"
    # Another, empty history named by --db is no way around the role: the models folder
    # belongs to the data folder, whose history has accounts (an adversarial probe's bypass).
    empty = tmp_path / "empty.db"
    for command in (["models", "--activate", model_id], ["calibrate"]):
        refused = run_cli(home, *command, "--db", str(empty), "--user", "ann",
                          "--password-file", str(secret), check=False)
        assert refused.returncode == 2 and "Only an admin may" in refused.stderr, command
    run_cli(home, "models", "--activate", model_id, "--db", str(empty), "--user", "admin",
            "--password-file", str(secret))


def test_rotate_key_replaces_the_key_and_old_signatures_still_verify(history, capsys):
    casewise_home, pw = history
    run_main(["users", "add", "ada", "--name", "Ada Admin", "--new-password-file", pw["ada"]],
             capsys)
    run_main(["review", "1", "--accept", "--user", "ada", "--password-file", pw["ada"]], capsys)
    with open_store(casewise_home / "casewise.db") as store:
        before = store.account("ada").key_fingerprint
    out = run_main(["users", "rotate-key", "--user", "ada", "--password-file", pw["ada"]],
                   capsys).out
    with open_store(casewise_home / "casewise.db") as store:
        after = store.account("ada").key_fingerprint
        assert after != before and after[:16] in out.replace(" ", "")
        assert store.audit_events(kind="key_rotated")[-1].payload["old_key_fingerprint"] == \
            before
    run_main(["review", "1", "--defer", "--user", "ada", "--password-file", pw["ada"]], capsys)
    verified = run_main(["audit", "verify"], capsys).out
    assert "signatures: 2 checked, 0 bad" in verified
