"""Exit codes say what happened (README, "Exit codes"): ``score`` exits 4 when a case failed
(it used to exit 0 with 39 of 40 failed) and ``ask`` when the LLM did not answer (it used to
exit 0 with the server unreachable). In-process, with a real tiny model and a real history."""

from __future__ import annotations

import json
import socket

from app import pipeline
from app.store import open_store
from tests.helpers.cli import run_main
from tests.helpers.data import synthetic_rows, write_csv


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_score_exits_4_naming_the_cases_that_failed(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CASEWISE_HOME", str(home))
    rows = [{"text": r["text"]} for r in synthetic_rows(2, seed=11)]  # 6 cases
    cases = write_csv(tmp_path / "cases.csv", rows)
    original = pipeline.explain

    def fail_one(bench, result, *args, **kwargs):
        if result.text == rows[1]["text"]:
            raise RuntimeError("attribution blew up")
        return original(bench, result, *args, **kwargs)

    monkeypatch.setattr(pipeline, "explain", fail_one)
    db = tmp_path / "cases.db"
    out = run_main(["score", str(cases), "--json", "--db", str(db)], capsys, code=4)
    counts = json.loads(out.out.splitlines()[-1])
    assert (counts["stored"], counts["failed"]) == (5, 1)
    assert "cases.csv:2 failed: attribution blew up" in out.err
    monkeypatch.setattr(pipeline, "explain", original)
    again = run_main(["score", str(cases), "--json", "--db", str(db)], capsys, code=0)
    assert json.loads(again.out.splitlines()[-1])["completed"] == 1  # finished, not skipped


def test_ask_exits_4_when_the_server_does_not_answer_and_files_the_attempt(
        home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CASEWISE_HOME", str(home))
    db = tmp_path / "cases.db"
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = run_main(["ask", "the rash came back, awful", "--backend", "openai", "--base-url",
                    url, "--model", "m", "--timeout", "2", "--no-attributions", "--json",
                    "--db", str(db)], capsys, code=4)
    opinion = json.loads(out.out.splitlines()[-1])
    assert opinion["error"]
    with open_store(db) as store:
        [summary] = store.find_cases().items
        assert store.get_case(summary.id).opinion.value.error == opinion["error"]


def test_ask_preview_of_an_unknown_backend_setup_is_a_clear_error(home, monkeypatch, capsys):
    monkeypatch.setenv("CASEWISE_HOME", str(home))
    out = run_main(["ask", "the rash came back", "--backend", "local", "--preview"], capsys,
                   code=2)
    assert "needs --model" in out.err


def test_a_remote_preview_names_what_is_not_de_identified(home, monkeypatch, capsys):
    """The preview of a remote request says, beside the redacted text, which Safe Harbor kinds
    the redaction does not find (issue 14): in the text and in the JSON. Nothing is sent."""
    from models.redaction import NOT_HANDLED

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    url = "http://192.0.2.7:9/v1"  # TEST-NET-1: documentation only, never routed
    base = ["ask", "Seen by Dr. Allegra Whitfield on 3-14-57.", "--backend", "openai",
            "--base-url", url, "--model", "m", "--allow-remote", "--preview",
            "--no-attributions"]
    plain = run_main(base, capsys, code=0).out
    assert "Whitfield" not in plain and "3-14-57" not in plain
    assert "Not de-identified:" in plain and "without a day and year" in plain
    shown = json.loads(run_main([*base, "--json"], capsys, code=0).out.splitlines()[-1])
    assert shown["not_deidentified"] == list(NOT_HANDLED)


def test_ask_preview_from_the_terminal_is_what_ask_sends_for_a_trimmed_case(
        home, tmp_path, monkeypatch, capsys):
    """``ask --preview`` (attributions on, no checks) against ``ask`` (attributions with their
    checks, then sent): the server gets exactly the messages and hash the preview showed, for
    a case trimmed to fit. The prompt's size limit is lowered so that a short case is trimmed
    and its attribution stays quick."""
    from explainers import second_opinion
    from tests.helpers.llm_server import serving

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    monkeypatch.setattr(second_opinion, "REMOTE_PROMPT_CHARS", 1500)
    case = " ".join(["the rash came back after two awful weeks on the new tablets"] * 30)
    with serving() as server:
        base = ["ask", case, "--backend", "openai", "--base-url", server.url, "--model", "ok",
                "--json"]
        shown = json.loads(run_main([*base, "--preview"], capsys).out.splitlines()[-1])
        assert not server.requests  # a preview sends nothing
        opinion = json.loads(run_main([*base, "--db", str(tmp_path / "cases.db")],
                                      capsys).out.splitlines()[-1])
        sent = server.requests[-1]["messages"]
    assert shown["case_trimmed"] and opinion["case_trimmed"]
    assert "none computed" not in json.dumps(shown["messages"])  # the attribution is in it
    assert sent == shown["messages"]
    assert opinion["prompt_sha256"] == shown["prompt_sha256"]
