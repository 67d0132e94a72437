"""The one path of a case: decide -> store -> explain (reusing the prediction) -> ask -> store.

``run_case`` takes one case as far as the steps asked, each optional, and files every record
in the case history as it is made; ``run_batch`` does the same for many cases in chunks, with
one store transaction per chunk and per kind of record. ``preview`` is the only source of
"what would be sent" to an LLM, and ``run_case`` sends exactly that. The window, the CLI and
batch scoring call these and differ only in how they show progress and results: they get the
partial results (the decision, the coarse attribution, the LLM's text) through ``Listener``.

A store failure never loses the answer: the case keeps what was computed, ``CaseResult``
says what is not stored (``store_error``), and ``file_case`` stores it whole later.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from explainers.types import Attribution, LLMOpinion
from models.errors import CasewiseError, DataError
from models.progress import (
    CancelFlag,
    Cancelled,
    ProgressCallback,
    ProgressTracker,
    raise_if_cancelled,
)
from models.types import CaseInput, EscalationDecision, Prediction

if TYPE_CHECKING:
    from app.casework import Workbench
    from app.store import CaseProgress, CaseWrite
    from explainers.second_opinion import LLMRequest

log = logging.getLogger(__name__)

ASK_NEVER, ASK_ESCALATED, ASK_ALWAYS = "never", "escalated", "always"
CHUNK = 32  # cases decided together, and stored together, in a batch


@dataclass(frozen=True)
class Steps:
    """Which steps to run. ``ask``: never, for escalated cases only, or always."""

    explain: bool = True
    ask: str = ASK_NEVER
    store: bool = True
    # The share of AUTO decisions drawn at random for the audit sample (the settings' 5 % in
    # the window and the CLI; none unless asked here).
    audit_share: float = 0.0

    def wants_opinion(self, decision: EscalationDecision | None) -> bool:
        if self.ask == ASK_ALWAYS:
            return True
        return self.ask == ASK_ESCALATED and decision is not None and decision.escalated


@dataclass(frozen=True)
class LLMChoice:
    """The LLM to ask, made on first use (an in-process model loads for seconds), with the
    names to record when it cannot be made at all."""

    make_backend: Callable[[], Any]
    name: str
    model: str = ""
    base_url: str | None = None
    allow_remote: bool = False
    max_tokens: int | None = None
    _made: list = field(default_factory=list, compare=False, repr=False)

    def backend(self) -> Any:
        if not self._made:
            self._made.append(self.make_backend())
        return self._made[0]


@dataclass
class Listener:
    """What a front end wants to see while a case runs; every callback is optional.
    Callbacks run on the worker's thread: a window forwards them to its GUI thread."""

    decided: Callable[[CaseResult], None] | None = None
    stored: Callable[[CaseWrite], None] | None = None
    coarse: Callable[[Attribution], None] | None = None
    explained: Callable[[Attribution], None] | None = None
    llm_text: Callable[[str], None] | None = None
    answered: Callable[[LLMOpinion], None] | None = None
    progress: ProgressCallback | None = None

    def emit(self, name: str, value: Any) -> None:
        callback = getattr(self, name)
        if callback is not None:
            callback(value)


@dataclass
class CaseResult:
    """A case and what the pipeline made of it so far.

    ``case_id``/``version`` come from the last write that stored it; ``unstored`` names the
    records made but not yet in the history (a failed write), which ``file_case`` stores."""

    case: CaseInput
    prediction: Prediction | None = None
    decision: EscalationDecision | None = None
    attribution: Attribution | None = None
    opinion: LLMOpinion | None = None
    case_id: int | None = None
    version: str | None = None
    write: CaseWrite | None = None
    unstored: set[str] = field(default_factory=set)
    store_error: Exception | None = None
    audit_sample: bool = False  # an AUTO case drawn for the audit sample: reviewed blind

    @property
    def text(self) -> str:
        return self.case.text

    @property
    def escalated(self) -> bool:
        return self.decision is not None and self.decision.escalated

    @property
    def stored(self) -> bool:
        return self.case_id is not None and not self.unstored

    def note_write(self, write: CaseWrite) -> None:
        self.case_id, self.version, self.write = write.case_id, write.version_sha256, write


# -- the steps ---------------------------------------------------------------------------------

def decide(bench: Workbench, texts: Sequence[str], progress: ProgressCallback | None = None,
           cancel: CancelFlag | None = None) -> list[tuple[Prediction, EscalationDecision]]:
    """Predictions (with conformal sets) and escalation decisions for a batch, in one pass."""
    from models.escalation import predict_and_decide

    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise DataError("The case text is empty: paste or type it, or open a file.")
    answers = predict_and_decide(bench.classifier, bench.policy, list(texts), progress, cancel)
    watch = bench.guarantee
    if watch is None or not watch.alarm:
        return answers
    from models.guarantee_monitor import suspended

    return [(p, suspended(d, watch) if d.auto else d) for p, d in answers]


def explain(bench: Workbench, result: CaseResult, listener: Listener | None = None,
            cancel: CancelFlag | None = None, **options: Any) -> Attribution:
    """SHAP word attributions with the faithfulness and flip checks for the case's prediction
    (its probabilities are reused: the text is not classified again). ``options`` are
    ``explainers.attribution.explain``'s (target, budget, method, ...)."""
    from explainers.attribution import explain as attribute

    listener = listener or Listener()

    def update(attribution: Attribution) -> None:
        if not attribution.final:  # the final one is the return value
            listener.emit("coarse", attribution)

    known = result.prediction.probabilities if result.prediction is not None else None
    options.setdefault("with_checks", True)
    options.setdefault("amortized", bench.amortized)
    return attribute(bench.classifier, result.text, on_update=update,
                     progress=listener.progress, cancel=cancel, known_probabilities=known,
                     **options)


def evidence_for(result: CaseResult):
    """The prompt's evidence from the case's prediction, decision and attribution."""
    from explainers.second_opinion import evidence_of

    return evidence_of(result.prediction, result.decision, result.attribution)


def preview(backend: Any, bench: Workbench, result: CaseResult,
            max_tokens: int | None = None) -> LLMRequest:
    """Exactly what ``ask`` would send to ``backend`` for this case (de-identified when the
    backend is remote), without sending anything: for the reviewer to see first."""
    from explainers.second_opinion import DEFAULT_MAX_TOKENS, prepare_request

    return prepare_request(backend, result.text, bench.labels, evidence_for(result),
                           max_tokens=max_tokens or DEFAULT_MAX_TOKENS)


def ask(bench: Workbench, result: CaseResult, llm: LLMChoice, listener: Listener | None = None,
        cancel: CancelFlag | None = None) -> LLMOpinion:
    """The LLM's second opinion, checked against the evidence; an LLM that cannot be started
    gives an opinion whose ``error`` says why."""
    from explainers.rationale_check import with_rationale_check
    from explainers.second_opinion import (
        DEFAULT_MAX_TOKENS,
        failed_opinion,
        second_opinion,
        word_values_of,
    )
    from models.llm.base import LLMError

    listener = listener or Listener()
    try:
        backend = llm.backend()
    except LLMError as exc:
        return failed_opinion(llm.name, llm.model, llm.base_url, str(exc))
    label = result.prediction.label
    values = word_values_of(result.attribution, label) if result.attribution else None
    opinion = second_opinion(backend, result.text, bench.labels, evidence_for(result), values,
                             allow_remote=llm.allow_remote, cancel=cancel,
                             on_text=listener.llm_text,
                             max_tokens=llm.max_tokens or DEFAULT_MAX_TOKENS)
    return with_rationale_check(bench.classifier, result.text, opinion, result.attribution)


# -- one case ----------------------------------------------------------------------------------

def run_case(bench: Workbench, case: CaseInput | CaseResult, *, store: Any = None,
             steps: Steps = Steps(), llm: LLMChoice | None = None,
             listener: Listener | None = None, cancel: CancelFlag | None = None,
             explain_options: dict[str, Any] | None = None) -> CaseResult:
    """Take one case through the steps asked and file every record in ``store`` (when given
    and ``steps.store``). A ``CaseResult`` continues where it stopped: what it holds is not
    computed again. Raises ``Cancelled`` when ``cancel`` is set (what was stored stays)."""
    listener = listener or Listener()
    result = case if isinstance(case, CaseResult) else CaseResult(case)
    store = store if steps.store else None
    decided_now = result.prediction is None or "prediction" in result.unstored
    if result.prediction is None:
        [(result.prediction, result.decision)] = decide(bench, [result.text], listener.progress,
                                                        cancel)
        result.unstored |= {"prediction"}
        listener.emit("decided", result)
    _file(store, result, listener)
    if decided_now and store is not None and result.case_id is not None:
        draw_audit_sample(store, [result], steps.audit_share)
    if steps.explain and result.attribution is None:
        raise_if_cancelled(cancel)
        result.attribution = explain(bench, result, listener, cancel, **(explain_options or {}))
        result.unstored.add("attribution")
        listener.emit("explained", result.attribution)
        _file(store, result, listener)
    if llm is not None and steps.wants_opinion(result.decision) and result.opinion is None:
        raise_if_cancelled(cancel)
        result.opinion = ask(bench, result, llm, listener, cancel)
        result.unstored.add("opinion")
        listener.emit("answered", result.opinion)
        _file(store, result, listener)
    return result


def run_cases(bench: Workbench, cases: Sequence[CaseInput], *, store: Any = None,
              steps: Steps = Steps(), llm: LLMChoice | None = None,
              listener: Listener | None = None, cancel: CancelFlag | None = None,
              explain_options: dict[str, Any] | None = None) -> list[CaseResult]:
    """``run_case`` for several cases given together (``predict --file``): decided in one
    pass, then each taken through the rest. Unlike ``run_batch``, a case already stored gets
    this answer added to its trail."""
    listener = listener or Listener()
    answers = decide(bench, [case.text for case in cases], listener.progress, cancel)
    results = []
    for case, (prediction, decision) in zip(cases, answers, strict=True):
        result = CaseResult(case, prediction, decision, unstored={"prediction"})
        listener.emit("decided", result)
        results.append(run_case(bench, result, store=store, steps=steps, llm=llm,
                                listener=listener, cancel=cancel,
                                explain_options=explain_options))
    return results


_AUDIT_DRAW = random.SystemRandom()  # not predictable, so no one can steer what is audited


def draw_audit_sample(store: Any, results: Sequence[CaseResult], share: float) -> None:
    """Draw each newly decided AUTO case into the audit sample with probability ``share`` and
    mark the drawn ones in the history (one transaction). The audit sample is reviewed blind
    and is what the guarantee monitor reads; a store failure leaves the cases undrawn."""
    if share <= 0:
        return
    drawn = [r for r in results if r.decision is not None and r.decision.auto
             and r.case_id is not None and _AUDIT_DRAW.random() < share]
    by_policy: dict[str, list[CaseResult]] = {}
    for result in drawn:
        by_policy.setdefault(result.decision.policy_id, []).append(result)
    from app.store import StoreError

    for policy_id, chosen in by_policy.items():
        try:
            store.record_audit_samples([r.case_id for r in chosen], policy_id, share)
        except StoreError as exc:
            log.warning("audit sample not recorded: %s", exc)
            continue
        for result in chosen:
            result.audit_sample = True


def _file(store: Any, result: CaseResult, listener: Listener) -> None:
    """Store what the case has that the history lacks; a store failure is kept in the result
    (the work goes on and the answer is shown) and later writes are not tried."""
    if store is None or result.store_error is not None or not result.unstored:
        return
    from app.store import StoreError

    try:
        write = file_case(store, result)
    except StoreError as exc:
        result.store_error = exc
        log.warning("case not stored: %s", exc)
        return
    listener.emit("stored", write)


def file_case(store: Any, result: CaseResult) -> CaseWrite:
    """Store everything of the case that is not stored yet (``result.unstored``); also the
    retry after a failed write. Each write is one transaction; the result shows the case as
    stored (``case_id``) only once all of it is, so nobody acts on half a case."""
    first = None
    if "prediction" in result.unstored:
        first = _file_decision(store, result)
    records = [getattr(result, kind) for kind in ("attribution", "opinion")
               if kind in result.unstored]
    try:
        case_id = first.case_id if first is not None else result.case_id
        last = store.record_many([(case_id, r) for r in records])[0] if records else first
    except Exception:
        if first is not None:  # the decision is stored: a retry must not store it twice
            result.note_write(first)
            result.unstored.discard("prediction")
        raise
    result.note_write(last or result.write)
    result.unstored -= {"prediction", "attribution", "opinion"}
    result.store_error = None
    return result.write


def _file_decision(store: Any, result: CaseResult) -> CaseWrite:
    if result.case_id is not None:
        return store.record_analysis(result.case_id, result.prediction, result.decision)
    write = store.add_case(result.text, result.case.source, result.case.metadata or None,
                           prediction=result.prediction, escalation=result.decision)
    if not write.new:  # the same text was stored before: the new answer joins its trail
        write = store.record_analysis(write.case_id, result.prediction, result.decision)
    return write


def register_model(store: Any, bench: Workbench) -> None:
    """Make sure the store knows the model its predictions will cite, and read what the
    audited AUTO decisions say of its policy's bound (``watch_guarantee``)."""
    from app.casework import register_in_store

    register_in_store(store, bench)
    watch_guarantee(store, bench)


def watch_guarantee(store: Any, bench: Workbench, record: bool = True) -> Any:
    """The guarantee monitor over the policy's AUTO decisions that reviewers have since signed
    (``models.guarantee_monitor``), kept on ``bench``: while it raises the alarm, ``decide``
    escalates every case. The first alarm of a policy, and its end, are audit events (with
    ``record``; a read-only look writes nothing)."""
    from models.guarantee_monitor import watch

    policy = bench.policy
    if policy is None or policy.threshold is None:
        bench.guarantee = None
        return None
    audited = store.audited_decisions(policy.policy_id)
    bench.guarantee = watch([d.wrong for d in audited], policy.settings.alpha,
                            policy.settings.delta)
    if not record:
        return bench.guarantee
    if bench.guarantee.alarm:
        store.record_guarantee_alarm(bench.model_id, policy.policy_id,
                                     bench.guarantee.summary(),
                                     [d.case_id for d in audited if d.wrong])
    else:
        store.end_guarantee_alarms(bench.model_id, policy.policy_id)
    return bench.guarantee


# -- many cases --------------------------------------------------------------------------------

@dataclass
class BatchCounts:
    """What a batch did. ``completed``: cases stored before that this run finished (an
    attribution or opinion they lacked); ``failures`` holds (source, message)."""

    stored: int = 0
    completed: int = 0
    skipped: int = 0
    failed: int = 0
    escalated: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        """The counts as ``score --json`` prints them."""
        return {"stored": self.stored, "completed": self.completed, "skipped": self.skipped,
                "failed": self.failed, "escalated": self.escalated}

    def fail(self, source: str, exc: BaseException) -> None:
        self.failed += 1
        self.failures.append((source, str(exc) or type(exc).__name__))
        log.warning("case %s failed: %s", source, exc)


@dataclass
class _Pending:
    """One case of a chunk on its way: what it still needs."""

    result: CaseResult
    stage: str  # "new", "resume" (stored, lacks something), "reanalyse" (another model's)
    known: CaseProgress | None = None  # what the history already holds for it
    failed: bool = False
    needs_work: bool = False  # an attribution or opinion was computed for it

    def needs_attribution(self, steps: Steps) -> bool:
        had = self.stage == "resume" and self.known is not None and self.known.explained
        return steps.explain and not had and self.result.attribution is None

    def needs_opinion(self, steps: Steps, llm: LLMChoice | None) -> bool:
        had = self.known is not None and self.known.asked
        return llm is not None and steps.wants_opinion(self.result.decision) and not had \
            and self.result.opinion is None


def run_batch(bench: Workbench, cases: Sequence[CaseInput], store: Any, *,
              steps: Steps = Steps(), llm: LLMChoice | None = None,
              progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
              on_stored: Callable[[CaseWrite, BatchCounts], None] | None = None,
              chunk_size: int = CHUNK) -> BatchCounts:
    """Score ``cases`` into ``store``: new cases are decided and stored in one transaction
    per chunk; then their attributions (and opinions) are computed and stored in one more.
    A case already stored is finished (what it lacks for the steps asked) or skipped when
    whole, so a killed run resumes with nothing half-stored. A case that fails is counted and
    the batch goes on; a store failure stops it (raised; ``counts`` passed in, when given,
    holds what was done). Raises ``Cancelled`` between cases."""
    counts = BatchCounts()
    return score_into(counts, bench, cases, store, steps=steps, llm=llm, progress=progress,
                      cancel=cancel, on_stored=on_stored, chunk_size=chunk_size)


def score_into(counts: BatchCounts, bench: Workbench, cases: Sequence[CaseInput], store: Any,
               *, steps: Steps = Steps(), llm: LLMChoice | None = None,
               progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
               on_stored: Callable[[CaseWrite, BatchCounts], None] | None = None,
               chunk_size: int = CHUNK) -> BatchCounts:
    """``run_batch`` counting into ``counts``, so a caller still has them when it raises."""
    tracker = ProgressTracker("scoring", len(cases), progress)
    tracker.report()
    register_model(store, bench)
    for start in range(0, len(cases), chunk_size):
        raise_if_cancelled(cancel)
        chunk = cases[start:start + chunk_size]
        _run_chunk(bench, chunk, store, steps, llm, counts, cancel, on_stored, tracker)
        tracker.advance(start + len(chunk) - tracker.done, _progress_note(counts))
    return counts


@dataclass(frozen=True)
class BatchStatus:
    """Where a batch's cases stand in the history, read from it: what a cancelled or failed
    run tells the user, since its own counts lag behind what a chunk already stored."""

    cases: int  # distinct texts in the batch
    stored: int  # of them, in the history
    whole: int  # of those, with every record the steps ask for (the rest a re-run finishes)

    @property
    def unfinished(self) -> int:
        return self.stored - self.whole


def batch_status(cases: Sequence[CaseInput], store: Any, *, steps: Steps = Steps(),
                 llm: LLMChoice | None = None) -> BatchStatus:
    """How many of ``cases`` the history holds, and how many of those are whole for
    ``steps`` (a case stored before its attribution is not: a re-run finishes it)."""
    texts = list(dict.fromkeys(case.text for case in cases))
    known = store.case_progress(texts)
    whole = sum(not _lacks(progress, steps, llm) for progress in known.values())
    return BatchStatus(len(texts), len(known), whole)


def _progress_note(counts: BatchCounts) -> str:
    return f"{counts.stored + counts.completed} stored, {counts.escalated} escalated"


def _run_chunk(bench: Workbench, chunk: Sequence[CaseInput], store: Any, steps: Steps,
               llm: LLMChoice | None, counts: BatchCounts, cancel: CancelFlag | None,
               on_stored: Callable | None, tracker: ProgressTracker) -> None:
    pending = _sort_out(bench, chunk, store.case_progress([c.text for c in chunk]), steps,
                        llm, counts)
    _decide_chunk(bench, pending, counts, cancel)
    decided = [p for p in pending if not p.failed]
    raced = _store_decisions(store, decided)
    counts.skipped += len(raced)  # another process stored them meanwhile: theirs stand
    decided = [p for p in decided if p not in raced]
    draw_audit_sample(store, [p.result for p in decided if p.stage == "new"], steps.audit_share)
    _recall_attributions(store, decided, steps, llm)
    for item in decided:  # the slow part (attributions, the LLM): progress per case
        raise_if_cancelled(cancel)
        _extras(bench, item, steps, llm, counts, cancel)
        if item.needs_work:
            tracker.advance(1, _progress_note(counts))
    _store_extras(store, decided)
    for item in decided:
        if item.failed:
            continue  # stored as far as it got; the next run finishes it
        counts.stored += item.stage == "new"
        counts.completed += item.stage != "new"
        counts.escalated += item.result.escalated
        if on_stored is not None and item.result.write is not None:
            on_stored(item.result.write, counts)


def _sort_out(bench: Workbench, chunk: Sequence[CaseInput], progress: dict[str, CaseProgress],
              steps: Steps, llm: LLMChoice | None, counts: BatchCounts) -> list[_Pending]:
    """The chunk's cases that need work, and what work; whole ones are counted as skipped."""
    pending, seen = [], set()
    for case in chunk:
        if case.text in seen:
            counts.skipped += 1  # a repeat within the file: the first copy is the case
            continue
        seen.add(case.text)
        known = progress.get(case.text)
        if known is None:
            pending.append(_Pending(CaseResult(case), "new"))
        elif _lacks(known, steps, llm):
            stage = "resume" if known.model_id == bench.model_id else "reanalyse"
            pending.append(_Pending(CaseResult(case, case_id=known.case_id), stage,
                                    known if stage == "resume" else None))
        else:
            counts.skipped += 1
    return pending


def _recall_attributions(store: Any, pending: list[_Pending], steps: Steps,
                         llm: LLMChoice | None) -> None:
    """A resumed case that has its attribution but lacks its opinion is asked with that
    attribution as evidence, as a fresh run would ask (not with no evidence at all)."""
    for item in pending:
        if (item.stage == "resume" and item.known is not None and item.known.explained
                and item.result.attribution is None and item.needs_opinion(steps, llm)):
            stored = store.get_case(item.result.case_id).attribution
            if stored is not None:
                item.result.attribution = stored.value


def _lacks(known: CaseProgress, steps: Steps, llm: LLMChoice | None) -> bool:
    if known.model_id is None:
        return True
    if steps.explain and not known.explained:
        return True
    wants = llm is not None and (steps.ask == ASK_ALWAYS or
                                 (steps.ask == ASK_ESCALATED and bool(known.escalated)))
    return wants and not known.asked


def _decide_chunk(bench: Workbench, pending: list[_Pending], counts: BatchCounts,
                  cancel: CancelFlag | None) -> None:
    """Decide every case of the chunk in one pass. A resumed case is decided again by the
    same model (the same answer): its attribution reuses the probabilities."""
    if not pending:
        return
    try:
        answers = decide(bench, [p.result.text for p in pending], cancel=cancel)
    except Cancelled:
        raise
    except Exception:  # find the case that fails; the others go on
        answers = [_decide_one(bench, p, counts, cancel) for p in pending]
    for item, answer in zip(pending, answers, strict=True):
        if answer is None:
            item.failed = True
            continue
        item.result.prediction, item.result.decision = answer
        if item.stage != "resume":
            item.result.unstored.add("prediction")


def _decide_one(bench: Workbench, item: _Pending, counts: BatchCounts,
                cancel: CancelFlag | None) -> tuple[Prediction, EscalationDecision] | None:
    try:
        return decide(bench, [item.result.text], cancel=cancel)[0]
    except Cancelled:
        raise
    except Exception as exc:  # counted and named; the batch goes on
        counts.fail(item.result.case.source, exc)
        return None


def _store_decisions(store: Any, pending: list[_Pending]) -> list[_Pending]:
    """New cases with their predictions and decisions: one transaction for the chunk. Returns
    the cases another process (a second ``score`` over an overlapping file, a colleague)
    stored between the look-up and this write: nothing of them is stored again."""
    from app.store import NewCase

    new = [p for p in pending if p.stage == "new"]
    raced = []
    if new:
        writes = store.add_cases([NewCase(p.result.text, p.result.case.source,
                                          p.result.case.metadata or None, p.result.prediction,
                                          p.result.decision) for p in new])
        for item, write in zip(new, writes, strict=True):
            if not write.new and item.result.text not in _earlier_texts(new, item):
                raced.append(item)
                continue
            item.result.note_write(write)
            item.result.unstored.discard("prediction")
    for item in pending:  # another model's case: this model's answer joins its trail
        if item.stage == "reanalyse":
            file_case(store, item.result)
    return raced


def _earlier_texts(items: list[_Pending], item: _Pending) -> set[str]:
    """Texts met before ``item`` in the chunk (a repeated row is a duplicate, not a race)."""
    return {p.result.text for p in items[:items.index(item)]}


def _extras(bench: Workbench, item: _Pending, steps: Steps, llm: LLMChoice | None,
            counts: BatchCounts, cancel: CancelFlag | None) -> None:
    """The attribution and the opinion a case lacks; a failure is counted, not raised (what
    the case has stays stored, and the next run finishes it)."""
    result = item.result
    try:
        item.needs_work = item.needs_attribution(steps) or item.needs_opinion(steps, llm)
        if item.needs_attribution(steps):
            result.attribution = explain(bench, result, cancel=cancel, refine=False)
            result.unstored.add("attribution")
        if item.needs_opinion(steps, llm):
            result.opinion = ask(bench, result, llm, cancel=cancel)
            result.unstored.add("opinion")  # a failed answer is kept as the record of it
            if result.opinion.error:
                raise CasewiseError(f"the LLM did not answer: {result.opinion.error}")
    except Cancelled:
        raise
    except Exception as exc:  # counted and named; the batch goes on
        counts.fail(result.case.source, exc)
        item.failed = True


def _store_extras(store: Any, done: list[_Pending]) -> None:
    """The chunk's attributions and opinions: one transaction."""
    items = [(p.result, kind) for p in done for kind in ("attribution", "opinion")
             if kind in p.result.unstored]
    if not items:
        return
    writes = store.record_many([(r.case_id, getattr(r, kind)) for r, kind in items])
    by_case = {w.case_id: w for w in writes}
    for result, kind in items:
        result.note_write(by_case[result.case_id])
        result.unstored.discard(kind)
