"""The OpenAI-compatible backend against a real server: ``transformers serve`` from the pinned
transformers, serving the embedded SmolLM2 exported as ``main.py export-llm`` exports it
(tests/helpers/served_llm.py). Streaming, usage, the model list, cancel mid-stream, a server
not yet ready and a server killed mid-answer; then a whole second opinion through it. The
scripted server (tests/test_openai_backend.py) keeps the faults a real one will not produce on
demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from explainers.prompts import Evidence
from explainers.second_opinion import second_opinion
from models.llm.base import LLMError
from models.llm.openai_backend import OpenAICompatibleBackend
from models.progress import CancelFlag, Cancelled
from tests.helpers.served_llm import ServedLLM, served_model

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="session")
def model_folder(request) -> object:
    return served_model(request.config.cache.mkdir("casewise"))


@pytest.fixture(scope="module")
def server(model_folder) -> Iterator[ServedLLM]:
    served = ServedLLM(model_folder).start()
    try:
        yield served.wait_ready()
    finally:
        served.stop()


def backend(served: ServedLLM, **options) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(served.url, served.model,
                                   **{"timeout": 120.0, "max_retries": 0, **options})


def test_the_server_lists_the_exported_model(server):
    assert server.model in backend(server).list_models()


def test_an_answer_streams_in_pieces_with_its_usage(server):
    llm = backend(server)
    pieces = list(llm.stream(QUESTION, max_tokens=16))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert llm.last_usage.tokens_in and llm.last_usage.tokens_in > 5
    assert llm.last_usage.tokens_out and 1 <= llm.last_usage.tokens_out <= 16


def test_cancel_mid_stream_stops_it_and_the_server_answers_the_next(server):
    llm, cancel, pieces = backend(server), CancelFlag(), []
    with pytest.raises(Cancelled):
        for piece in llm.stream(QUESTION, max_tokens=200, cancel=cancel):
            pieces.append(piece)
            if len(pieces) == 2:
                cancel.cancel()
    assert len(pieces) == 2
    assert "".join(backend(server).stream(QUESTION, max_tokens=8)).strip()


def test_a_server_not_yet_ready_then_killed_mid_answer(model_folder):
    served = ServedLLM(model_folder).start()  # its own: this one is killed
    try:
        with pytest.raises(LLMError, match=r"Cannot reach the LLM server.*connection refused.*"
                                           r"Start the server"):
            backend(served).list_models()  # still loading the model: not listening yet
        served.wait_ready()
        llm, pieces = backend(served), []
        with pytest.raises(LLMError, match=r"broke mid-answer|stopped mid-answer") as failure:
            for piece in llm.stream(QUESTION, max_tokens=300):
                pieces.append(piece)
                if len(pieces) == 3:
                    threading.Thread(target=served.kill).start()
        assert pieces and "characters" in str(failure.value)
    finally:
        served.stop()


def test_a_second_opinion_through_the_real_server(server):
    evidence = Evidence("positive", {"negative": 0.2, "neutral": 0.3, "positive": 0.5},
                        ("neutral", "positive"), ("low confidence",),
                        (("headaches", 0.31), ("one", 0.12), ("dizziness", -0.2)))
    start = time.monotonic()
    opinion = second_opinion(backend(server), "I went from eight headaches a month to one. "
                             "Some dizziness in the first week.", LABELS, evidence,
                             max_tokens=120)
    assert opinion.error is None, opinion.error
    assert opinion.backend == "openai" and opinion.model == server.model
    assert opinion.raw_text.strip() and opinion.tokens_in
    # transformers serve ignores logprobs: the opinion says the distribution is not there.
    assert opinion.label_probabilities is None
    assert any(f.kind == "label_probabilities" and "not available" in f.message
               for f in opinion.check)
    assert opinion.seconds <= time.monotonic() - start + 0.01
