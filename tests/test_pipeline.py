"""The case pipeline (app/pipeline.py) without Qt and without subprocesses: a real tiny model,
a real SQLite history, and a real loopback OpenAI-compatible server (tests/helpers)."""

from __future__ import annotations

import pytest

from app import pipeline
from app.casework import load_workbench
from app.pipeline import ASK_ALWAYS, CaseResult, Listener, LLMChoice, Steps, run_batch, run_case
from app.store import StoreError, open_store
from models.llm.openai_backend import OpenAICompatibleBackend
from models.progress import CancelFlag, Cancelled
from models.types import CaseInput
from tests.helpers.data import synthetic_rows
from tests.helpers.llm_server import serving

CASE = "the medicine was awful and the rash came back, terrible weeks"


@pytest.fixture(scope="module")
def bench(trained_home):
    return load_workbench(trained_home)


@pytest.fixture()
def history(tmp_path):
    store = open_store(tmp_path / "cases.db", actor="tester", busy_timeout=1.0)
    yield store
    store.close()


def count_classified(bench, monkeypatch) -> list[str]:
    """Every text the classifier is run on, unmasked or masked, in one list."""
    seen: list[str] = []
    classifier = bench.classifier
    for name in ("scores", "logits"):
        original = getattr(type(classifier), name)

        def spy(self, texts, *args, _original=original, **kwargs):
            seen.extend(str(t) for t in texts)
            return _original(self, texts, *args, **kwargs)
        monkeypatch.setattr(type(classifier), name, spy)
    return seen


def test_one_case_is_decided_stored_explained_and_stored_again(bench, history):
    seen = []
    listener = Listener(decided=lambda r: seen.append("decided"),
                        stored=lambda w: seen.append(("stored", tuple(w.record_ids))),
                        coarse=lambda a: seen.append("coarse"),
                        explained=lambda a: seen.append("explained"))
    result = run_case(bench, CaseInput(CASE, "typed"), store=history, listener=listener)
    assert result.stored and result.store_error is None
    case = history.get_case(result.case_id)
    assert case.prediction.value == result.prediction
    assert case.escalation.value == result.decision
    assert case.attribution.value.features == result.attribution.features
    assert result.version == case.version_sha256  # nobody reads back what was written
    assert seen[0] == "decided" and seen[1] == ("stored", ("prediction", "escalation"))
    assert seen[-2:] == ["explained", ("stored", ("attribution",))]
    assert history.verify_chain().ok


def test_explaining_reuses_the_prediction(bench, monkeypatch):
    """The unmasked text is classified once, by the decision; the attribution reuses its
    probabilities (explain used to classify it twice, and the CLI a third time)."""
    seen = count_classified(bench, monkeypatch)
    result = run_case(bench, CaseInput(CASE), steps=Steps(store=False))
    assert seen.count(CASE) == 1
    attribution = result.attribution
    assert attribution.probabilities == pytest.approx(result.prediction.probabilities)
    assert attribution.efficiency_gap() < 1e-4


def test_a_store_that_fails_keeps_the_answer_and_stores_it_whole_later(bench, tmp_path):
    path = tmp_path / "cases.db"
    open_store(path, actor="tester").close()
    readonly = open_store(f"sqlite:///file:{path}?mode=ro&uri=true", actor="tester")
    try:
        result = run_case(bench, CaseInput(CASE), store=readonly)
    finally:
        readonly.close()
    assert isinstance(result.store_error, StoreError)
    assert result.attribution is not None  # the work went on
    assert result.unstored == {"prediction", "attribution"}
    with open_store(path, actor="tester") as store:
        write = pipeline.file_case(store, result)
        case = store.get_case(write.case_id)
        assert case.attribution is not None and case.prediction is not None
        assert write.version_sha256 == case.version_sha256 and result.stored


def test_preview_is_exactly_what_is_sent_for_a_trimmed_case(bench):
    """A case too long for the server's context is trimmed; the preview shows the trimmed
    prompt and its hash, and the server receives exactly those messages."""
    long_case = " ".join(["the rash came back after two awful weeks"] * 700)  # ~30k chars
    result = CaseResult(CaseInput(long_case))
    with serving() as server:
        backend = OpenAICompatibleBackend(server.url, "ok", timeout=5.0, max_retries=0)
        llm = LLMChoice(lambda: backend, "openai", "ok", server.url)
        result = run_case(bench, result, steps=Steps(explain=False, ask=ASK_ALWAYS,
                                                     store=False), llm=llm)
        shown = pipeline.preview(backend, bench, result)
        sent = server.requests[-1]["messages"]
    assert shown.prompt.trimmed and result.opinion.case_trimmed
    assert sent == shown.messages
    assert result.opinion.prompt_sha256 == shown.sha256
    assert result.opinion.sent_text == shown.sent_text


def test_an_llm_that_cannot_start_gives_a_failed_opinion(bench):
    from models.llm.base import LLMError

    def broken():
        raise LLMError("no model here")

    result = run_case(bench, CaseInput(CASE), steps=Steps(explain=False, ask=ASK_ALWAYS,
                                                          store=False),
                      llm=LLMChoice(broken, "local", "nowhere"))
    assert result.opinion.error == "no model here"


def cases(n: int, seed: int = 5) -> list[CaseInput]:
    return [CaseInput(row["text"], f"batch.csv:{i}")
            for i, row in enumerate(synthetic_rows(n // 3 + 1, seed=seed)[:n], start=1)]


def test_a_batch_goes_in_by_chunks_and_a_rerun_skips_it(bench, history, monkeypatch):
    calls = {"add_cases": 0, "record_many": 0, "case_id_for_text": 0}
    for name in calls:
        original = getattr(history, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(history, name, counted)
    batch = cases(20)
    counts = run_batch(bench, batch, history, chunk_size=8)
    assert counts.to_dict() == {"stored": 20, "completed": 0, "skipped": 0, "failed": 0,
                                "escalated": counts.escalated}
    # One transaction per chunk for the cases, one for their attributions; no per-case lookups.
    assert calls == {"add_cases": 3, "record_many": 3, "case_id_for_text": 0}
    again = run_batch(bench, batch, history, chunk_size=8)
    assert (again.stored, again.skipped) == (0, 20)
    assert history.verify_chain().ok


def test_cases_another_process_stores_mid_chunk_are_skipped_not_stored_twice(
        bench, history, tmp_path, monkeypatch):
    """Two ``score`` runs over overlapping files: the other run stores some of this chunk's
    cases after this run looked them up and before it writes (the race the writers' lock
    ends at the write). Those are counted skipped; nothing of them is stored again."""
    batch = cases(6)
    other = open_store(tmp_path / "cases.db", actor="other run")
    original = history.add_cases

    def after_the_other_run(items):
        for case in batch[:2]:
            other.add_case(case.text, "other.csv")
        return original(items)

    monkeypatch.setattr(history, "add_cases", after_the_other_run)
    try:
        counts = run_batch(bench, batch, history, chunk_size=6, steps=Steps(explain=False))
    finally:
        other.close()
    assert (counts.stored, counts.skipped) == (4, 2)
    for case in batch[:2]:  # only the other run's record of them: no prediction of this run
        record = history.get_case(history.case_id_for_text(case.text))
        assert record.source == "other.csv" and record.predictions == ()
    assert history.find_cases().total == 6 and history.verify_chain().ok


def test_a_killed_batch_resumes_to_whole_cases(bench, history):
    """Cancelled while explaining (as a killed process stops): the chunk's cases are stored
    with their decisions but no attributions; the re-run finishes exactly those."""
    batch = cases(12)
    cancel = CancelFlag()
    explained = []
    original = pipeline.explain

    def explain_then_stop(*args, **kwargs):
        explained.append(1)
        if len(explained) == 3:
            cancel.cancel()
        return original(*args, **kwargs)

    pipeline.explain = explain_then_stop
    try:
        with pytest.raises(Cancelled):
            run_batch(bench, batch, history, chunk_size=6, cancel=cancel)
    finally:
        pipeline.explain = original
    progress = history.case_progress([c.text for c in batch])
    assert len(progress) == 6 and not any(p.explained for p in progress.values())
    counts = run_batch(bench, batch, history, chunk_size=6)
    assert (counts.stored, counts.completed, counts.skipped) == (6, 6, 0)
    progress = history.case_progress([c.text for c in batch])
    assert len(progress) == 12 and all(p.explained for p in progress.values())
    assert history.verify_chain().ok


def test_a_history_locked_mid_batch_stops_it_whole_and_a_rerun_finishes(bench, history):
    """Another process takes the history's write lock after the first chunk (as the adversarial
    probe did): the batch stops with a StoreError, every case stored is whole, and a re-run
    once the lock is gone stores the rest. A real SQLite lock, not a mock."""
    import sqlite3

    batch = cases(12)
    holder: list[sqlite3.Connection] = []

    def lock_once(write, counts):
        if not holder:
            other = sqlite3.connect(history.location, isolation_level=None, timeout=0)
            other.execute("BEGIN EXCLUSIVE")
            holder.append(other)

    try:
        with pytest.raises(StoreError):
            run_batch(bench, batch, history, chunk_size=6, on_stored=lock_once)
    finally:
        for other in holder:
            other.execute("ROLLBACK")
            other.close()
    progress = history.case_progress([c.text for c in batch])
    assert len(progress) == 6 and all(p.explained for p in progress.values())
    counts = run_batch(bench, batch, history, chunk_size=6)
    assert (counts.stored, counts.skipped) == (6, 6)
    assert history.verify_chain().ok


def test_a_case_filed_without_attribution_is_finished_by_a_batch(bench, history):
    """``predict`` stores a case with no attribution; ``score`` used to skip it forever."""
    [case] = cases(1, seed=9)
    run_case(bench, case, store=history, steps=Steps(explain=False))
    counts = run_batch(bench, [case], history)
    assert (counts.stored, counts.completed, counts.skipped) == (0, 1, 0)
    assert history.case_progress([case.text])[case.text].explained


def test_a_resumed_case_is_asked_with_its_stored_attribution(bench, history, tmp_path):
    """A case explained by an earlier run and asked now sends the LLM the same prompt (its
    top words, its word values) as a case explained and asked in one run; it used to be
    asked with no evidence at all."""
    [case] = cases(1, seed=12)
    with serving() as server:
        backend = OpenAICompatibleBackend(server.url, "ok", timeout=5.0, max_retries=0)
        llm = LLMChoice(lambda: backend, "openai", "ok", server.url)
        run_batch(bench, [case], history)  # explained, not asked
        resumed = run_batch(bench, [case], history, steps=Steps(ask=ASK_ALWAYS), llm=llm)
        asked_later = server.requests[-1]["messages"]
        with open_store(tmp_path / "fresh.db", actor="tester") as fresh:
            run_batch(bench, [case], fresh, steps=Steps(ask=ASK_ALWAYS), llm=llm)
        asked_fresh = server.requests[-1]["messages"]
    assert resumed.completed == 1
    assert asked_later == asked_fresh


def test_a_failing_case_is_counted_and_the_batch_goes_on(bench, history, monkeypatch):
    batch = cases(6)
    original = pipeline.explain

    def fail_on_third(bench_, result, *args, **kwargs):
        if result.text == batch[2].text:
            raise RuntimeError("attribution blew up")
        return original(bench_, result, *args, **kwargs)

    monkeypatch.setattr(pipeline, "explain", fail_on_third)
    counts = run_batch(bench, batch, history)
    assert (counts.stored, counts.failed) == (5, 1)
    assert counts.failures == [(batch[2].source, "attribution blew up")]
    monkeypatch.setattr(pipeline, "explain", original)
    assert run_batch(bench, batch, history).completed == 1  # the next run finishes it


def test_a_files_other_columns_are_stored_with_its_cases(bench, history, tmp_path):
    """``score`` and the window's import read a file the same way: its id column used to be
    dropped (the source said only "file.csv:1"); now every other column is kept."""
    from app.batch import read_cases
    from tests.helpers.data import write_csv

    rows = [{"id": str(900 + i), "narrative": row["text"], "outcome": row["label"]}
            for i, row in enumerate(synthetic_rows(1, seed=11))]
    batch = read_cases(write_csv(tmp_path / "file.csv", rows))  # the prose column, guessed
    run_batch(bench, batch, history, steps=Steps(explain=False))
    stored = history.get_case(history.case_id_for_text(rows[1]["narrative"]))
    assert stored.source == "file.csv:2 (id 901)"
    assert stored.metadata == {"id": "901", "outcome": rows[1]["outcome"]}


def test_batch_status_reads_what_a_cancelled_batch_left(bench, history):
    """A cancel while explaining leaves the chunk's cases decided but unexplained; the status
    counts them from the history (the run's own counts had none of them) as unfinished."""
    from app.pipeline import BatchStatus, batch_status

    batch = cases(9)
    cancel = CancelFlag()
    progress = lambda p: p.done >= 1 and cancel.cancel()  # noqa: E731
    with pytest.raises(Cancelled):
        run_batch(bench, batch, history, chunk_size=6, cancel=cancel, progress=progress)
    assert batch_status(batch, history) == BatchStatus(9, 6, 0)
    assert batch_status(batch, history, steps=Steps(explain=False)).whole == 6
    run_batch(bench, batch, history, chunk_size=6)
    assert batch_status([*batch, batch[0]], history) == BatchStatus(9, 9, 9)


def test_score_keeps_the_columns_it_is_told_to(home, tmp_path, monkeypatch, capsys):
    """The CLI reads the file as the window does; ``--keep-cols`` is its list of ticks."""
    from tests.helpers.cli import run_main
    from tests.helpers.data import write_csv

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    rows = [{"id": str(70 + i), "narrative": row["text"], "outcome": row["label"]}
            for i, row in enumerate(synthetic_rows(1, seed=12))]
    db = tmp_path / "cli.db"
    run_main(["score", str(write_csv(tmp_path / "f.csv", rows)), "--no-explain",
              "--keep-cols", "id", "--db", str(db)], capsys)
    with open_store(db) as store:
        case = store.get_case(store.case_id_for_text(rows[0]["narrative"]))
    assert (case.source, case.metadata) == ("f.csv:1 (id 70)", {"id": "70"})
