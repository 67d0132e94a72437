"""What an adversarial probe got past (issue 14): each test failed before its fix."""

from __future__ import annotations

import pytest

from models.llm.base import is_local_url


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8080/v1", True),
    ("http://127.45.6.7/v1", True),
    ("http://[::1]:8080/v1", True),
    ("http://[::ffff:127.0.0.1]:8080/v1", True),
    ("http://localhost:1234/v1", True),  # resolves to loopback only on this machine
    ("http://LOCALHOST./v1", True),
    # a name DNS resolves: it may lead anywhere, whatever it ends with
    ("http://llm.localhost:1234/v1", False),
    ("http://localhost.example.com/v1", False),
    ("http://127.0.0.1.nip.io/v1", False),
    ("http://10.0.0.5/v1", False),
    ("http://0.0.0.0:8080/v1", False),
    ("https://api.example.com/v1", False),
])
def test_only_literal_loopback_addresses_and_localhost_count_as_local(url, local):
    assert is_local_url(url) is local


def test_localhost_that_resolves_elsewhere_is_remote(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.9", 0))])
    assert not is_local_url("http://localhost:1234/v1")  # a hosts file pointing it away


HOSTILE = "Dr \x1b[2J\x1b]0;owned\x07House\rMallory \x9b31m red \u202eevil\x00 after the NUL"


def test_what_the_terminal_gets_is_escaped_and_the_history_keeps_the_text(casewise_home,
                                                                           capsys):
    from app.store import open_store
    from tests.helpers.cli import run_main
    from tests.store_helpers import prediction

    casewise_home.mkdir(parents=True, exist_ok=True)
    with open_store(casewise_home / "casewise.db") as store:
        case_id = store.add_case(HOSTILE, prediction=prediction()).case_id
    out = run_main(["history"], capsys).out
    for raw in ("\x1b", "\x07", "\r", "\x9b", "\u202e", "\x00"):
        assert raw not in out
    assert "\\u001b[2J" in out and "after the NUL" in out  # escaped, and not cut at the NUL
    rows = run_main(["history", "--json"], capsys).out
    import json

    assert json.loads(rows)[0]["preview"].startswith(HOSTILE[:40])  # JSON: the same values
    with open_store(casewise_home / "casewise.db") as store:
        assert store.get_case(case_id).text == HOSTILE  # stored exactly as given
        assert store.find_cases().items[0].preview == HOSTILE


def test_error_messages_are_escaped_too(capsys):
    from tests.helpers.cli import run_main

    result = run_main(["review", "1", "--override", "x\x1b[31m", "--db",
                       "/nonexistent/\x1b]0;t\x07/c.db"], capsys, code=2)
    assert "\x1b" not in result.err and "\x07" not in result.err


def test_predict_and_explain_take_a_long_case_from_a_file(home, tmp_path):
    """A 200 KB case does not fit on a command line (the OS limits its length): --file."""
    import json

    from tests.helpers.cli import run_cli

    case = tmp_path / "long.txt"
    case.write_text("the rash came back after two days. " * 6000 + "\nthe end", encoding="utf-8")
    predicted = run_cli(home, "predict", "--file", str(case), "--json", "--no-store")
    assert len(predicted.stdout.strip().splitlines()) == 1  # the whole file is one case
    short = tmp_path / "short.txt"  # explaining 200 KB is slow (the long-text issue's)
    short.write_text("the rash came back after two days.\n" * 50, encoding="utf-8")
    explained = json.loads(run_cli(home, "explain", "--file", str(short), "--json",
                                   "--no-store", "--budget", "40").stdout)
    assert explained["label"] and explained["features"]
    piped = json.loads(run_cli(home, "explain", "--file", "-", "--json", "--no-store",
                               "--budget", "40", input_text="great relief at last").stdout)
    assert {f["text"] for f in piped["features"]} >= {"relief"}
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    refused = run_cli(home, "explain", "--file", str(binary), "--no-store", check=False)
    assert refused.returncode == 2 and "binary file" in refused.stderr
    both = run_cli(home, "explain", "text", "--file", str(case), "--no-store", check=False)
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.fixture(params=["file", "folder"])
def immutable_history(casewise_home, request):
    """A history file, or the folder holding it, that nobody may write, not even root:
    ``chattr +i`` (skipped where the file system or the user cannot set it)."""
    import shutil
    import subprocess

    from app.store import open_store
    from tests.helpers.accounts import signer
    from tests.store_helpers import prediction

    casewise_home.mkdir(parents=True, exist_ok=True)
    db = casewise_home / "casewise.db"
    with open_store(db) as store:
        case_id = store.add_case("A rash after the drug.", prediction=prediction()).case_id
        store.add_review(case_id, signer(store, "ann"), "accept")
    frozen = db if request.param == "file" else casewise_home
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(frozen)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file immutable here")
    try:
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(frozen)], check=True)


def test_a_history_that_cannot_be_written_is_read(immutable_history, tmp_path, capsys):
    from tests.helpers.cli import run_main

    listed = run_main(["history"], capsys)
    assert "1 case(s)" in listed.out and "Reading it read-only" in listed.err
    verified = run_main(["audit", "verify"], capsys)
    assert "audit chain intact" in verified.out and "signatures: 1 checked, 0 bad" in verified.out
    exported = run_main(["export", "--case", "1", "--out", str(tmp_path / "case.pdf")], capsys,
                        code=3)
    assert (tmp_path / "case.pdf").read_bytes()[:5] == b"%PDF-"
    assert "NOT logged" in exported.err
    refused = run_main(["review", "1", "--defer", "--user", "ann", "--password-stdin"], capsys,
                       code=2)
    assert "read-only" in refused.err  # writing still says so clearly


def test_a_one_megabyte_case_exports_to_a_bounded_pdf(store, tmp_path):
    """It wrote 234 pages in 235 s; now the text is printed up to a stated size and the rest
    referenced by the case's content hash."""
    from pypdf import PdfReader

    from app.reports import export_cases
    from app.reports.case_page import PRINTED_TEXT_CHARS
    from tests.store_helpers import prediction

    text = "".join(f"Day {i}: the rash came back after the second dose. " for i in range(20000))
    assert len(text) > 1_000_000
    case_id = store.add_case(text, prediction=prediction()).case_id
    result = export_cases(store, [case_id], tmp_path / "big.pdf")
    pages = PdfReader(result.path).pages
    assert len(pages) < 15
    printed = " ".join(" ".join(p.extract_text().split()) for p in pages)
    assert f"{len(text) - PRINTED_TEXT_CHARS:,} more characters" in printed
    assert store.get_case(case_id).content_sha256 in printed.replace(" ", "")


def test_a_script_the_calibration_cases_never_contained_is_escalated(trained_home):
    """A right-to-left text scored under the embedding-distance threshold; now the script
    itself is noticed (the tiny model's calibration split is English)."""
    from app.casework import load_workbench
    from app.pipeline import decide

    bench = load_workbench(trained_home)
    hebrew = "המטופל דיווח על פריחה אחרי המנה השנייה של התרופה"
    (_, decision), (_, english) = decide(bench, [hebrew, "a rash after the second dose"])
    assert decision.decision == "escalate" and "unusual_script" in decision.reason_codes
    assert any("Hebrew script" in reason for reason in decision.reasons)
    assert "unusual_script" not in english.reason_codes
    # a foreign name in an English text is not a foreign script
    (_, named), = decide(bench, ["Dr. Ødegård saw a rash after the dose of Ζ-drug"])
    assert "unusual_script" not in named.reason_codes
