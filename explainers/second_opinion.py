"""The LLM's second opinion on one case: prompt, stream, read, check, and record what was sent.

Nothing private leaves unredacted: for a backend whose URL is not loopback, the case text is
de-identified (``models.redaction``) before the prompt is built, and only when the user has
turned remote backends on. Every failure ends in an ``LLMOpinion`` whose ``error`` says what
happened; the case itself is never touched.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace

from explainers.opinion_check import check_answer, parse_answer, without_markup
from explainers.prompts import (
    CANNOT_TELL,
    PREFILL,
    PROMPT_VERSION,
    Evidence,
    Prompt,
    build_prompt,
)
from explainers.types import Finding, LLMOpinion
from models.llm.answer_guard import LOOP, AnswerGuard
from models.llm.base import LLMBackend, LLMError, Usage
from models.llm.label_distribution import LabelDistribution, from_scores, from_server_logprobs
from models.progress import CancelFlag, Cancelled

DEFAULT_MAX_TOKENS = 256
CITED_WORDS = 2  # what the prompt asks for
CANDIDATE_WORDS = 150  # of a long case, the words an in-process model may cite
# Without a tokenizer for a server's model, keep prompts under this many characters.
REMOTE_PROMPT_CHARS = 24_000


def evidence_of(prediction, decision=None, attribution=None, top_k: int = 8) -> Evidence:
    """The prompt's evidence from the classifier's prediction, escalation and attributions."""
    words: tuple[tuple[str, float], ...] = ()
    if attribution is not None:
        cls = prediction.label
        ranked = sorted(attribution.features, key=lambda f: -abs(f.values[cls]))[:top_k]
        words = tuple((f.text, f.values[cls]) for f in ranked)
    return Evidence(
        label=prediction.label, probabilities=prediction.probabilities,
        prediction_set=tuple(prediction.prediction_set or ()),
        reasons=tuple(decision.reasons) if decision is not None else (), top_words=words)


def word_values_of(attribution, label: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for feature in attribution.features:
        values[feature.text] = values.get(feature.text, 0.0) + feature.values[label]
    return values


def _fits_for(backend: LLMBackend, max_tokens: int) -> Callable[[list], bool]:
    count = getattr(backend, "count_tokens", None)
    context = getattr(backend, "context_length", None)
    if count is not None and context is not None:
        return lambda messages: count(messages) + max_tokens <= context
    return lambda messages: sum(len(m["content"]) for m in messages) <= REMOTE_PROMPT_CHARS


@dataclass(frozen=True)
class LLMRequest:
    """Exactly what would leave for the LLM for one case: the (de-identified, for a remote
    server) text, the messages built from it, and where they would go. ``second_opinion``
    sends this and only this; a preview shows it without sending anything."""

    backend: str
    model: str
    base_url: str | None
    remote: bool
    sent_text: str
    redactions: tuple[dict, ...]
    evidence: Evidence
    prompt: Prompt
    max_tokens: int

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.prompt.messages

    @property
    def sha256(self) -> str:
        return self.prompt.sha256

    def to_dict(self) -> dict:
        """The ``ask --preview --json`` contract."""
        return {"remote": self.remote, "base_url": self.base_url, "backend": self.backend,
                "model": self.model, "sent_text": self.sent_text,
                "redactions": [dict(r) for r in self.redactions], "messages": self.messages,
                "prompt_version": self.prompt.version, "prompt_sha256": self.sha256,
                "case_trimmed": self.prompt.trimmed}


def prepare_request(backend: LLMBackend, case_text: str, labels: list[str],
                    evidence: Evidence, descriptions: dict[str, str] | None = None,
                    max_tokens: int = DEFAULT_MAX_TOKENS) -> LLMRequest:
    """The one place that decides what is sent: de-identify for a remote backend, then build
    the prompt trimmed to the backend's context."""
    sent, redactions = case_text, ()
    if backend.is_remote:
        sent, redactions, evidence = outgoing(case_text, evidence)
    prompt = build_prompt(sent, labels, evidence, descriptions, _fits_for(backend, max_tokens))
    return LLMRequest(backend.name, backend.model, backend.base_url, backend.is_remote, sent,
                      tuple(redactions), evidence, prompt, max_tokens)


def second_opinion(backend: LLMBackend, case_text: str, labels: list[str], evidence: Evidence,
                   word_values: dict[str, float] | None = None,
                   descriptions: dict[str, str] | None = None, allow_remote: bool = False,
                   max_tokens: int = DEFAULT_MAX_TOKENS, cancel: CancelFlag | None = None,
                   on_text: Callable[[str], None] | None = None) -> LLMOpinion:
    start = time.monotonic()
    base = {"backend": backend.name, "model": backend.model, "base_url": backend.base_url}
    if backend.is_remote and not allow_remote:
        return _failed(base, start, "Remote LLM backends are off: turn them on in the "
                       "settings (or pass --allow-remote) to send a de-identified copy of "
                       f"the case to {backend.base_url}.")
    request = prepare_request(backend, case_text, labels, evidence, descriptions, max_tokens)
    return _answer(backend, request, labels, word_values, cancel, on_text, start)


def _answer(backend: LLMBackend, request: LLMRequest, labels: list[str],
            word_values: dict[str, float] | None, cancel: CancelFlag | None,
            on_text: Callable[[str], None] | None, start: float) -> LLMOpinion:
    base = {"backend": backend.name, "model": backend.model, "base_url": backend.base_url}
    sent, redactions, prompt = request.sent_text, request.redactions, request.prompt
    evidence, max_tokens = request.evidence, request.max_tokens
    guided = backend.supports_prefill
    backend.last_usage = Usage()  # a failed answer must not report the previous one's tokens
    pieces: list[str] = []
    timing = {"first": None}
    usage = Usage()

    def shown(piece: str) -> None:
        if timing["first"] is None:
            timing["first"] = time.monotonic() - start
        pieces.append(piece)
        if on_text is not None:
            on_text(piece)

    error = None
    guard = AnswerGuard(json_answer=not guided)
    distribution: LabelDistribution | None = None
    backend.last_logprobs = []
    try:
        if guided:
            # The words it may cite: those of the case as the prompt shows it (trimmed to fit).
            raw, usage, distribution = _guided_answer(
                backend, prompt.messages, labels, max_tokens, cancel, shown, guard,
                sent[: prompt.case_chars_sent])
        else:
            _read_guarded(backend.stream(prompt.messages, max_tokens=max_tokens,
                                         cancel=cancel), guard, shown)
            raw, usage = guard.text, backend.last_usage
            distribution = from_server_logprobs(backend.last_logprobs, labels)
    except LLMError as exc:
        error, raw = str(exc), guard.text if not guided else "".join(pieces)
    except Cancelled:
        error = "Cancelled by the user" + (" after part of the answer." if pieces else ".")
        raw = guard.text if not guided else "".join(pieces)
    first = timing["first"]
    answer = parse_answer(raw)
    if guided and answer.parse == "json":
        answer = replace(answer, parse="guided")
    label, findings = (None, [])
    if raw.strip():
        label, findings = check_answer(answer, sent, labels, evidence.label, word_values)
    elif error is None:
        error = "The model returned an empty answer."
    if raw.strip() and error is None:
        findings.append(_distribution_finding(distribution, guided,
                                              bool(backend.last_logprobs)))
    if guard.stopped == LOOP:
        findings.insert(0, Finding("repetition", "warning", "The answer began repeating "
                                   f"itself ({_shortened(guard.repeated)!r} again and again); "
                                   "it was stopped at the first repetition."))
    if prompt.trimmed:
        findings.insert(0, Finding("trimmed", "note", f"The case text was cut to "
                                   f"{prompt.case_chars_sent} of {prompt.case_chars} characters "
                                   "to fit the model's context; the evidence was kept whole."))
    return LLMOpinion(
        **base, text=answer.explanation or raw.strip(), raw_text=raw, label=label,
        cited_words=without_markup(answer.cited_words)[0], check=tuple(findings),
        parse=answer.parse,
        sent_text=sent, sent_sha256=hashlib.sha256(sent.encode()).hexdigest(),
        redactions=redactions, case_trimmed=prompt.trimmed, prompt_version=prompt.version,
        prompt_sha256=prompt.sha256, tokens_in=usage.tokens_in, tokens_out=usage.tokens_out,
        first_token_seconds=first, seconds=time.monotonic() - start, error=error,
        label_probabilities=distribution.probabilities if distribution else None,
        label_probabilities_source=_source_of(distribution))


def _source_of(distribution: LabelDistribution | None) -> str:
    if distribution is None:
        return ""
    if distribution.covered < 1.0:
        return f"{distribution.source} ({distribution.covered:.0%} of the mass named a label)"
    return distribution.source


def _distribution_finding(distribution: LabelDistribution | None, guided: bool,
                          had_logprobs: bool) -> Finding:
    if distribution is None and had_logprobs:
        return Finding("label_probabilities", "note", "The AI's label as probabilities is not "
                       "available: the server sent log-probabilities, but none where the "
                       "answer's label begins names a label.")
    if distribution is None:
        return Finding("label_probabilities", "note", "The AI's label as probabilities is not "
                       "available: this server returned no log-probabilities (vLLM, "
                       "llama.cpp's server and Ollama do; transformers serve does not).")
    shown = " · ".join(f"{label} {p:.2f}" for label, p in
                       sorted(distribution.probabilities.items(), key=lambda kv: -kv[1]))
    how = ("its likelihood of each label" if guided else
           f"the server's log-probabilities where it wrote the label, {_source_of(distribution)}")
    return Finding("label_probabilities", "note",
                   f"The AI's label as probabilities ({how}): {shown}.")


def _read_guarded(stream, guard: AnswerGuard, shown: Callable[[str], None]) -> None:
    """Hand on the answer's pieces until the guard ends it; leaving early closes the stream
    (a server's connection with it, so it stops generating)."""
    with closing(stream):
        for piece in stream:
            kept = guard.accept(piece)
            if kept:
                shown(kept)
            if guard.should_stop:
                return


def _shortened(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _guided_answer(backend, messages: list[dict], labels: list[str], max_tokens: int,
                   cancel: CancelFlag | None, shown: Callable[[str], None],
                   guard: AnswerGuard, case_text: str
                   ) -> tuple[str, Usage, LabelDistribution]:
    """The answer in three steps for an in-process model, which can be made to continue a
    started answer: it writes the explanation, then picks its label from the label set by
    likelihood (a 135M model rarely writes a valid label on its own), then picks the words it
    cites from the case's own words, by likelihood too (left to write them, it invented words
    the case does not have). The JSON around them is the app's, so it always parses."""
    def turn(started: str) -> list[dict]:
        return [*messages, {"role": "assistant", "content": started}]

    closed = False
    with closing(backend.stream(turn(PREFILL), max_tokens=max_tokens, cancel=cancel,
                                stop='"')) as stream:
        for piece in stream:
            kept = "" if closed or guard.stopped else guard.accept(piece.split('"', 1)[0])
            if kept:
                shown(kept)
            closed = closed or '"' in piece  # generation stops right after; drain the rest
            if guard.should_stop:
                break
    usage = Usage(backend.last_usage.tokens_in, backend.last_usage.tokens_out)
    text = guard.text.strip()
    so_far = PREFILL + json.dumps(text, ensure_ascii=False)[1:-1] + '", "label": "'
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    options = [*labels, CANNOT_TELL]
    scores = backend.option_scores(turn(so_far), options)
    label = options[max(range(len(options)), key=scores.__getitem__)]
    so_far += label + '", "words": ['
    cited = _cited_words(backend, turn, so_far, case_words(case_text), cancel)
    words = ", ".join(json.dumps(w, ensure_ascii=False) for w in cited)
    return so_far + words + "]}", usage, from_scores(options, scores)


def _cited_words(backend, turn, so_far: str, candidates: list[str],
                 cancel: CancelFlag | None) -> list[str]:
    """The words the model cites, each chosen by likelihood among the case's own words (as
    its label is among the labels): it cannot cite a word the case does not have."""
    cited: list[str] = []
    for _ in range(CITED_WORDS):
        remaining = [w for w in candidates if w not in cited]
        if not remaining:
            break
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        listed = "".join(json.dumps(w, ensure_ascii=False) + ", " for w in cited)
        scores = backend.option_scores(turn(so_far + listed + '"'), remaining)
        cited.append(remaining[max(range(len(remaining)), key=scores.__getitem__)])
    return cited


def case_words(text: str, limit: int = CANDIDATE_WORDS) -> list[str]:
    """The words of a case an in-process model may cite: each once (as first written), three
    letters or more, not a stop word; the first ``limit`` of them for a long case."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    seen: dict[str, str] = {}
    for word in re.findall(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]", text):
        key = word.lower()
        stop = key in ENGLISH_STOP_WORDS or key.split("'")[0] in ENGLISH_STOP_WORDS
        if len(word) >= 3 and not stop and key not in seen:
            seen[key] = word
            if len(seen) == limit:
                break
    return list(seen.values())


def outgoing(case_text: str, evidence: Evidence) -> tuple[str, tuple[dict, ...], Evidence]:
    """What may leave the machine: the de-identified text, what was replaced, and the evidence
    with identifier words replaced too."""
    from models.redaction import redact

    redaction = redact(case_text)
    redactions = tuple({"type": e.type, "start": e.start, "end": e.end}
                       for e in redaction.entities)
    return redaction.text, redactions, _redacted_evidence(evidence, redaction)


def _redacted_evidence(evidence: Evidence, redaction) -> Evidence:
    """The evidence words are words of the case: those inside an identifier leave as its
    placeholder, never as themselves."""
    words = []
    for word, value in evidence.top_words:
        hit = next((e for e in redaction.entities if word in e.text), None)
        words.append((f"[{hit.type}]", value) if hit is not None else (word, value))
    return replace(evidence, top_words=tuple(words))


def failed_opinion(backend: str, model: str, base_url: str | None, error: str) -> LLMOpinion:
    """The opinion recorded when the backend could not even be started."""
    return _failed({"backend": backend, "model": model, "base_url": base_url},
                   time.monotonic(), error)


def _failed(base: dict, start: float, error: str) -> LLMOpinion:
    return LLMOpinion(
        **base, text="", raw_text="", label=None, cited_words=(), check=(), parse="none",
        sent_text="", sent_sha256="", redactions=(), case_trimmed=False,
        prompt_version=PROMPT_VERSION, prompt_sha256="", tokens_in=None, tokens_out=None,
        first_token_seconds=None, seconds=time.monotonic() - start, error=error)
