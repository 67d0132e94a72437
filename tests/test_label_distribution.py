"""The LLM's label as a distribution over the label set (models/llm/label_distribution.py):
read from a server's top log-probabilities where the label begins (the scripted server sends
them as vLLM does; transformers serve sends none: tests/test_served_llm.py), or from an
in-process model's likelihood of each label (tests/test_second_opinion.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from explainers.second_opinion import second_opinion
from models.llm.label_distribution import TokenChoice, from_scores, from_server_logprobs
from models.llm.openai_backend import OpenAICompatibleBackend
from tests.helpers.llm_server import FakeServer, serving
from tests.helpers.opinions import CASE, EVIDENCE, LABELS, VALUES

LN = math.log


def tokens(*pieces) -> list[TokenChoice]:
    return [TokenChoice(t, lp, tuple(top)) for t, lp, top in pieces]


ANSWER = [('{"explanation": "The rash got worse.", "label', -0.1, []),
          ('": "', -0.01, []),
          ("neg", LN(0.6), [("neg", LN(0.6)), ("neutral", LN(0.25)), ("pos", LN(0.1)),
                            ("maybe", LN(0.05))]),
          ('ative", "words": ["rash"]}', -0.2, [])]


def test_the_distribution_is_read_where_the_label_begins():
    found = from_server_logprobs(tokens(*ANSWER), LABELS)
    assert found.source == "server log-probabilities"
    assert found.probabilities == pytest.approx({"negative": 0.6 / 0.95, "neutral": 0.25 / 0.95,
                                                 "positive": 0.1 / 0.95})
    assert found.covered == pytest.approx(0.95)


def test_a_token_that_begins_before_the_label_value_is_matched_after_it():
    pieces = [('{"label":', -0.1, []),
              (' "neu', LN(0.7), [(' "neu', LN(0.7)), (' "ne', LN(0.2)), ('"pos', LN(0.1))])]
    found = from_server_logprobs(tokens(*pieces), LABELS)
    # ' "ne' could begin negative or neutral: shared; '"pos' lacks the space: not this place.
    assert found.probabilities["neutral"] == pytest.approx((0.7 + 0.1) / 0.9)
    assert found.probabilities["negative"] == pytest.approx(0.1 / 0.9)


def test_a_label_that_begins_another_is_not_credited_with_it():
    pieces = [('{"label": "', -0.1, []),
              ('billing_dispute"', LN(0.9), [('billing_dispute"', LN(0.9)), ('billing"', LN(0.1))])]
    found = from_server_logprobs(tokens(*pieces), ["billing", "billing_dispute"])
    assert found.probabilities == pytest.approx({"billing": 0.1, "billing_dispute": 0.9})


@pytest.mark.parametrize("pieces", [[], [("no label here", -0.1, [])],
                                    [('{"label": "', -0.1, []), ("zebra", -0.1, [])]])
def test_nothing_readable_gives_no_distribution(pieces):
    assert from_server_logprobs(tokens(*pieces), LABELS) is None


def test_in_process_likelihoods_become_probabilities():
    found = from_scores(["a", "b"], [LN(0.3), LN(0.1)])
    assert found.probabilities == pytest.approx({"a": 0.75, "b": 0.25})


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    with serving() as httpd:
        yield httpd


def test_logprobs_that_name_no_label_are_said_so_not_blamed_on_the_server(server):
    server.script = [('{"explanation": "x", "label": "', -0.1, []), ("zebra", -0.1, []),
                     ('", "words": []}', -0.1, [])]
    llm = OpenAICompatibleBackend(server.url, "logprobs", timeout=3.0, max_retries=0)
    opinion = second_opinion(llm, CASE, LABELS, EVIDENCE, VALUES)
    note = next(f for f in opinion.check if f.kind == "label_probabilities")
    assert "sent log-probabilities, but none" in note.message


def test_an_opinion_from_a_server_with_logprobs_shows_the_distribution(server):
    server.script = ANSWER
    llm = OpenAICompatibleBackend(server.url, "logprobs", timeout=3.0, max_retries=0)
    opinion = second_opinion(llm, CASE, LABELS, EVIDENCE, VALUES)
    assert opinion.error is None and opinion.label == "negative"
    assert opinion.label_probabilities["negative"] == pytest.approx(0.6 / 0.95)
    assert opinion.label_probabilities_source.startswith("server log-probabilities")
    note = next(f for f in opinion.check if f.kind == "label_probabilities")
    assert "negative 0.63 · neutral 0.26 · positive 0.11" in note.message
    assert server.requests[-1]["logprobs"] is True and server.requests[-1]["top_logprobs"] == 5


def test_a_server_that_refuses_logprobs_answers_without_a_distribution(server):
    llm = OpenAICompatibleBackend(server.url, "no-logprobs", timeout=3.0, max_retries=0)
    opinion = second_opinion(llm, CASE, LABELS, EVIDENCE, VALUES)
    assert opinion.error is None and opinion.label_probabilities is None
    assert "logprobs" not in server.requests[-1]
    note = next(f for f in opinion.check if f.kind == "label_probabilities")
    assert "not available" in note.message
