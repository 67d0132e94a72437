"""Where an LLM's answer ends (models/llm/answer_guard.py): after its JSON object, or at the
first repetition of a loop; and the second opinion reading a real loopback server through it
(the scripted server: a real model will not loop on demand)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from explainers.second_opinion import second_opinion
from models.llm.answer_guard import JSON_END, LOOP, AnswerGuard
from models.llm.openai_backend import OpenAICompatibleBackend
from tests.helpers.llm_server import FakeServer, serving
from tests.helpers.opinions import CASE, EVIDENCE, LABELS, VALUES


def fed(guard: AnswerGuard, text: str, size: int = 7) -> str:
    return "".join(guard.accept(text[i : i + size]) for i in range(0, len(text), size))


def test_the_answer_ends_with_its_json_object_braces_in_strings_and_all():
    guard = AnswerGuard()
    answer = '{"explanation": "a {b} \\"c}\\" d", "label": "x", "words": ["a"]}'
    assert fed(guard, "Sure: " + answer + " and then some more") == "Sure: " + answer
    assert guard.stopped == JSON_END and guard.overrun and guard.should_stop


def test_a_complete_answer_followed_by_nothing_is_read_to_its_end():
    guard = AnswerGuard()
    fed(guard, '{"label": "x"}\n')
    assert guard.stopped == JSON_END and not guard.should_stop  # the usage chunk follows


@pytest.mark.parametrize("text, kept", [
    ("The review is positive. " * 5, "The review is positive."),
    ("It helps. " + "The patient says the drug works well. Maybe. " * 3,
     "It helps. The patient says the drug works well. Maybe. "),
])
def test_a_loop_is_stopped_at_its_first_repetition(text, kept):
    guard = AnswerGuard(json_answer=False)
    fed(guard, text)
    assert guard.stopped == LOOP and guard.should_stop
    assert guard.text == kept and guard.repeated


@pytest.mark.parametrize("text", [
    "Headaches went from eight a month to one... Really good... ok",
    "No, no, no. It did not work: the rash, the rash and the itching came back.",
    "The drug works. The drug works for me, and the drug works for my sister too.",
])
def test_ordinary_answers_are_not_loops(text):
    guard = AnswerGuard(json_answer=False)
    assert fed(guard, text, size=3) == text and guard.stopped is None


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    with serving() as httpd:
        yield httpd


def test_a_looping_server_answer_is_cut_and_flagged(server):
    start = '{"explanation": "'
    server.script = [start] + ["The rash got worse after the drug. "] * 12
    opinion = second_opinion(OpenAICompatibleBackend(server.url, "scripted", timeout=3.0,
                                                     max_retries=0), CASE, LABELS, EVIDENCE,
                             VALUES)
    assert opinion.error is None
    assert opinion.raw_text == start + "The rash got worse after the drug."
    assert opinion.check[0].kind == "repetition" and "again and again" in opinion.check[0].message


def test_text_after_the_json_is_neither_kept_nor_waited_for(server):
    answer = json.dumps({"explanation": "The rash got worse.", "label": "negative",
                         "words": ["rash"]})
    server.script = [answer[:30], answer[30:] + " Note: I am an AI.", " More words."]
    shown: list[str] = []
    opinion = second_opinion(OpenAICompatibleBackend(server.url, "scripted", timeout=3.0,
                                                     max_retries=0), CASE, LABELS, EVIDENCE,
                             VALUES, on_text=shown.append)
    assert opinion.error is None and opinion.raw_text == answer == "".join(shown)
    assert opinion.label == "negative" and opinion.parse == "json"
