"""The second opinion: prompt, lenient reading, evidence check, and the whole flow against a
real loopback server and the real embedded model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from explainers.opinion_check import check_answer, parse_answer
from explainers.prompts import PROMPT_VERSION, Evidence, build_prompt
from explainers.second_opinion import case_words, second_opinion
from models.llm.openai_backend import OpenAICompatibleBackend
from models.progress import CancelFlag, Cancelled
from tests.helpers.cli import run_cli
from tests.helpers.llm_server import FakeServer, free_port, non_loopback_address, serving
from tests.helpers.opinions import CASE, EVIDENCE, LABELS, VALUES


def test_prompt_carries_the_evidence_and_a_stable_hash():
    prompt = build_prompt(CASE, LABELS, EVIDENCE)
    user = prompt.messages[-1]["content"]
    for needle in (CASE, "negative 0.62", "negative, neutral", "below the certified threshold",
                   "worse (+0.21)", "stopped (-0.05)", "- positive: "):
        assert needle in user
    assert prompt.version == PROMPT_VERSION and not prompt.trimmed
    assert prompt.sha256 == build_prompt(CASE, LABELS, EVIDENCE).sha256
    other = Evidence(**{**EVIDENCE.__dict__, "label": "neutral"})
    assert prompt.sha256 != build_prompt(CASE, LABELS, other).sha256


def test_a_case_too_long_for_the_context_is_cut_and_the_evidence_kept():
    long_case = " ".join(["the rash came back"] * 400)
    prompt = build_prompt(long_case, LABELS, EVIDENCE,
                          fits=lambda m: sum(len(x["content"]) for x in m) < 3000)
    user = prompt.messages[-1]["content"]
    assert prompt.trimmed and prompt.case_chars_sent < len(long_case)
    assert "cut to fit" in user and "worse (+0.21)" in user


@pytest.mark.parametrize("raw, parse", [
    ('{"explanation": "Rash worse.", "label": "negative", "words": ["rash", "worse"]}', "json"),
    ('Sure!\n```json\n{"explanation": "Rash worse.", "label": "negative", '
     '"words": ["rash", "worse"]}\n```', "json"),
    ('{"explanation": "Rash worse.", "label": "negative", "words": ["rash", "worse"],}',
     "repaired"),
    ("{'explanation': 'Rash worse.', 'label': 'negative', 'words': ['rash', 'worse']}",
     "repaired"),
    ('{"explanation": "Rash worse.", "label": "negative", "words": ["rash", "worse"', "repaired"),
    ('explanation: "Rash worse." label: "negative" words: ["rash", "worse"] and more', "fields"),
])
def test_broken_json_is_recovered(raw, parse):
    answer = parse_answer(raw)
    assert answer.parse == parse
    assert answer.label == "negative" and answer.cited_words == ("rash", "worse")
    assert answer.explanation == "Rash worse."


def test_prose_is_kept_raw_and_flagged():
    answer = parse_answer("I think the patient is unhappy with the drug.")
    assert answer.parse == "none" and answer.label is None
    _, findings = check_answer(answer, CASE, LABELS, "negative")
    assert [f.kind for f in findings] == ["unparsed"]


def test_the_check_flags_invented_words_disagreement_and_opposite_signs():
    answer = parse_answer('{"explanation": "x", "label": "Positive", '
                          '"words": ["relief", "rash"]}')
    label, findings = check_answer(answer, CASE, LABELS, "negative", VALUES)
    kinds = [f.kind for f in findings]
    assert label == "positive" and "disagrees" in kinds
    assert any(f.kind == "not_in_text" and "'relief'" in f.message for f in findings)
    agree = parse_answer('{"explanation": "x", "label": "negative", "words": ["stopped"]}')
    label, findings = check_answer(agree, CASE, LABELS, "negative", VALUES)
    assert label == "negative" and [f.kind for f in findings] == ["opposite_sign"]
    unsure = parse_answer('{"explanation": "x", "label": "cannot tell", "words": []}')
    assert check_answer(unsure, CASE, LABELS, "negative", VALUES) == ("cannot tell", [])
    odd = parse_answer('{"explanation": "x", "label": "urgent", "words": []}')
    assert [f.kind for f in check_answer(odd, CASE, LABELS, "negative")[1]] == ["unknown_label"]


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    with serving() as httpd:
        yield httpd


def local_backend(server: FakeServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(server.url, "scripted", timeout=3.0, max_retries=0)


def test_second_opinion_from_a_loopback_server(server: FakeServer):
    answer = {"explanation": "The rash got worse.", "label": "neutral",
              "words": ["rash", "itching"]}
    text = json.dumps(answer)
    server.script = [text[:20], text[20:45], text[45:]]
    streamed: list[str] = []
    opinion = second_opinion(local_backend(server), CASE, LABELS, EVIDENCE, VALUES,
                             on_text=streamed.append)
    assert opinion.error is None and opinion.ai_generated
    assert "".join(streamed) == opinion.raw_text == text
    assert opinion.label == "neutral" and opinion.cited_words == ("rash", "itching")
    kinds = {f.kind for f in opinion.check}
    assert {"disagrees", "not_in_text"} <= kinds
    assert opinion.sent_text == CASE and opinion.redactions == ()  # loopback counts as local
    assert (opinion.tokens_in, opinion.tokens_out) == (12, 4)
    assert opinion.first_token_seconds is not None and opinion.seconds >= 0
    sent = server.requests[-1]["messages"]
    assert CASE in sent[-1]["content"] and sent[-1]["role"] == "user"  # no prefill to servers
    data = json.loads(json.dumps(opinion.to_dict()))
    assert data["ai_generated"] is True and data["check"]


def test_a_fault_becomes_an_error_in_the_opinion_not_a_crash():
    down = OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1", "x", timeout=2.0,
                                   max_retries=0)
    opinion = second_opinion(down, CASE, LABELS, EVIDENCE)
    assert opinion.error and "refused" in opinion.error and opinion.raw_text == ""


def test_remote_servers_are_off_until_turned_on(server: FakeServer):
    remote = OpenAICompatibleBackend("http://192.0.2.10/v1", "scripted", timeout=1.0,
                                     max_retries=0)
    opinion = second_opinion(remote, CASE, LABELS, EVIDENCE)
    assert "Remote LLM backends are off" in opinion.error and opinion.sent_text == ""


@pytest.fixture(scope="module")
def embedded():
    from models.llm.transformers_backend import TransformersBackend

    return TransformersBackend.embedded()


def test_the_embedded_model_streams_and_can_be_cancelled(embedded):
    messages = [{"role": "user", "content": "Name three colours."}]
    pieces = list(embedded.stream(messages, max_tokens=8))
    assert pieces and embedded.last_usage.tokens_out is not None
    assert 0 < embedded.last_usage.tokens_out <= 8
    cancel = CancelFlag()
    received = []
    with pytest.raises(Cancelled):
        for piece in embedded.stream(messages, max_tokens=64, cancel=cancel):
            received.append(piece)
            cancel.cancel()
    assert len(received) == 1


def test_embedded_second_opinion_is_recorded_whole(embedded):
    opinion = second_opinion(embedded, CASE, LABELS, EVIDENCE, VALUES, max_tokens=48)
    assert opinion.backend == "embedded" and opinion.ai_generated
    assert opinion.raw_text.startswith('{"explanation": "')  # the prefilled start
    assert opinion.parse == "guided" and json.loads(opinion.raw_text)
    assert opinion.label in [*LABELS, "cannot tell"]  # chosen by likelihood: always valid
    assert opinion.error is None and opinion.tokens_in > 100 and opinion.tokens_out > 0
    assert opinion.sent_text == CASE
    # Its cited words are chosen from the case's own words: none is invented.
    assert len(opinion.cited_words) == 2
    assert set(opinion.cited_words) <= set(case_words(CASE))
    assert "not_in_text" not in {f.kind for f in opinion.check}
    # Its label as a distribution: the likelihood of each label (and of "cannot tell").
    assert set(opinion.label_probabilities) == {*LABELS, "cannot tell"}
    assert sum(opinion.label_probabilities.values()) == pytest.approx(1.0)
    assert max(opinion.label_probabilities, key=opinion.label_probabilities.get) == \
        opinion.label and opinion.label_probabilities_source == "likelihood"


def test_the_words_an_in_process_model_may_cite_are_the_cases_own():
    words = case_words("I went from eight headaches a month to one. Side-effects: mild "
                       "dizziness, the 1st week; it's O.K. Zoë's rash, RASH", limit=7)
    assert words == ["went", "headaches", "month", "Side-effects", "mild", "dizziness", "week"]
    assert case_words("Zoë's rash, RASH and it's fine") == ["Zoë's", "rash", "fine"]


def test_a_model_without_a_chat_template_is_refused_as_a_base_model(tiny_base_dir):
    from models.llm.base import LLMError
    from models.llm.transformers_backend import TransformersBackend

    with pytest.raises(LLMError, match="no chat template: it is a base model"):
        TransformersBackend(tiny_base_dir)  # a tokenizer without one (an encoder's)


def test_a_missing_or_damaged_model_file_is_a_clear_error(tmp_path):
    from models.llm.base import LLMError
    from models.llm.transformers_backend import TransformersBackend

    with pytest.raises(LLMError, match="does not exist"):
        TransformersBackend(tmp_path / "nope.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 100)
    with pytest.raises(LLMError, match="damaged"):
        TransformersBackend(broken)


def test_a_remote_server_gets_only_the_redacted_text():
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    script = ['{"explanation": "Rash.", "label": "negative", "words": ["rash"]}']
    with serving(script, host=address) as httpd:
        remote = OpenAICompatibleBackend(httpd.url, "scripted", timeout=3.0, max_retries=0)
        assert remote.is_remote
        case = ("Maria Lopez (MRN: 00123456, phone 555-123-4567) says after two weeks the rash "
                "was worse.")
        opinion = second_opinion(remote, case, LABELS, EVIDENCE, allow_remote=True)
        sent = httpd.requests[-1]["messages"][-1]["content"]
        for secret in ("Maria", "Lopez", "00123456", "555-123-4567"):
            assert secret not in sent and secret not in opinion.sent_text
        assert "[MRN]" in sent and "[PHONE]" in sent and "rash" in sent
        assert {r["type"] for r in opinion.redactions} >= {"MRN", "PHONE"}
        assert opinion.sent_sha256 == hashlib.sha256(opinion.sent_text.encode()).hexdigest()
        assert opinion.error is None and opinion.label == "negative"


def test_ask_and_redact_contracts_from_the_command_line(home, server):
    server.script = ['{"explanation": "Rash.", "label": "negative", "words": ["rash"]}']
    answer = json.loads(run_cli(home, "ask", "the rash was awful", "--json", "--backend",
                                "openai", "--base-url", server.url, "--model",
                                "scripted").stdout)
    assert set(answer) >= {"backend", "model", "text", "label", "cited_words", "check",
                           "ai_generated", "sent_text", "seconds", "error"}
    assert answer["ai_generated"] is True and answer["error"] is None
    assert answer["sent_text"] == "the rash was awful" and answer["label"] == "negative"
    # The rationale check rides with every answer: "rash" taken out, the case scored again.
    assert answer["rationale"]["removed"] == ["rash"] and answer["rationale"]["label"] == \
        "negative"
    plain = run_cli(home, "ask", "the rash was awful", "--backend", "openai", "--base-url",
                    server.url, "--model", "scripted").stdout
    assert "Without the words the AI cites (“rash”)" in plain
    preview = json.loads(run_cli(home, "ask", "Call Dr. Lee at 555-123-4567 about the rash",
                                 "--backend", "openai", "--base-url", "https://llm.example/v1",
                                 "--model", "m", "--preview", "--json").stdout)
    assert preview["remote"] and "555-123-4567" not in json.dumps(preview["messages"])
    redacted = json.loads(run_cli(home, "redact", "Call 555-123-4567 today", "--json").stdout)
    assert redacted["text"] == "Call [PHONE] today"
    assert redacted["entities"] == [{"type": "PHONE", "start": 5, "end": 17}]
    unreachable = run_cli(home, "ask", "the rash", "--json", "--backend", "openai",
                          "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--model", "x",
                          "--timeout", "2", check=False)
    down = json.loads(unreachable.stdout)
    assert unreachable.returncode == 4  # the LLM did not answer (it used to exit 0)
    assert down["error"] and "ai_generated" in down


def test_llama_cpp_backend_when_installed_or_a_clear_message():
    from models.llm.base import LLMError
    from models.llm.factory import make_backend

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        with pytest.raises(LLMError, match="llama-cpp-python is not installed"):
            make_backend("llama-cpp")
        return
    backend = make_backend("llama-cpp")  # the embedded GGUF
    pieces = list(backend.stream([{"role": "user", "content": "Say hi."}], max_tokens=5))
    assert pieces and backend.last_usage.tokens_out
