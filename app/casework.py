"""The case pipeline: load the active model and policy, decide, explain, ask, and store.

Plain functions with progress callbacks and cancel flags; the CLI calls them directly and the
desktop app (``app/ui``) runs them off the GUI thread. Every step that produces a record also
files it in the case history, so the trail of a case is the same whichever front end made it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import CasewiseError
from models.progress import CancelFlag, ProgressCallback


@dataclass
class Workbench:
    """The loaded classifier and its escalation policy (``None`` when none is fitted)."""

    classifier: object
    policy: object | None
    model_dir: Path
    card: dict = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return self.classifier.model_id

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels


@dataclass(frozen=True)
class CaseAnalysis:
    """What the classifier and the policy say about one case."""

    text: str
    prediction: object  # models.types.Prediction
    decision: object  # models.escalation.EscalationDecision

    @property
    def escalated(self) -> bool:
        return not self.decision.auto


def load_classifier(data_dir: Path, model_id: str | None = None):
    """The active (or named) model's classifier; raises CasewiseError when there is none."""
    from models.classifier import Classifier
    from models.registry import ModelRegistry

    registry = ModelRegistry(data_dir)
    return Classifier.load(registry.path_of(model_id) if model_id else registry.active_path())


def load_workbench(data_dir: Path, model_id: str | None = None) -> Workbench:
    """The active (or named) model with its policy; raises CasewiseError when there is none."""
    from models.escalation import load_policy

    classifier = load_classifier(data_dir, model_id)
    path = Path(classifier.path)
    policy = load_policy(path, classifier.model_id, classifier.labels)
    return Workbench(classifier, policy, path, _model_card(path) or {})


def _weights_sha256(model_dir: Path) -> str | None:
    from models.artifact import MANIFEST_FILE, read_json

    manifest = model_dir / MANIFEST_FILE
    return read_json(manifest).get("sha256", {}).get("model.safetensors") \
        if manifest.exists() else None


def _model_card(model_dir: Path) -> dict | None:
    from models.artifact import read_json

    card_file = model_dir / "model_card.json"
    return read_json(card_file) if card_file.exists() else None


def model_identity(model_dir: Path) -> tuple[str | None, dict | None]:
    """The weights' SHA-256 (from the manifest) and the model card, to register a model."""
    return _weights_sha256(model_dir), _model_card(model_dir)


def register_in_store(store, bench: Workbench) -> None:
    """Make sure the store knows the model that will be cited by its predictions."""
    store.register_model(bench.model_id, _weights_sha256(bench.model_dir), bench.card or None)


def analyze(bench: Workbench, texts: list[str], progress: ProgressCallback | None = None,
            cancel: CancelFlag | None = None) -> list[CaseAnalysis]:
    """Predictions, conformal sets and escalation decisions for a batch, in one pass."""
    from models.escalation import predict_and_decide

    if not texts or any(not t.strip() for t in texts):
        raise CasewiseError("A case needs some text: paste or type it, or open a file.")
    answers = predict_and_decide(bench.classifier, bench.policy, texts, progress, cancel)
    return [CaseAnalysis(t, p, d) for t, (p, d) in zip(texts, answers, strict=True)]


def explain_case(bench: Workbench, text: str, target: str | None = None,
                 on_update: Callable | None = None, progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None):
    """SHAP word attributions with the faithfulness and flip checks; a coarse first answer
    goes to ``on_update`` so a window can show it while the final one is computed."""
    from explainers.attribution import explain

    return explain(bench.classifier, text, target=target, first_budget=None,
                   on_update=on_update, progress=progress, cancel=cancel, with_checks=True)


def ask_llm(backend, bench: Workbench, analysis: CaseAnalysis, attribution=None, *,
            allow_remote: bool = False, on_text: Callable[[str], None] | None = None,
            cancel: CancelFlag | None = None, max_tokens: int | None = None):
    """The LLM's second opinion on an analysed case, checked against the evidence
    (``max_tokens``: the longest answer; ``None`` = the second opinion's default)."""
    from explainers.second_opinion import (
        DEFAULT_MAX_TOKENS,
        evidence_of,
        second_opinion,
        word_values_of,
    )

    evidence = evidence_of(analysis.prediction, analysis.decision, attribution)
    values = word_values_of(attribution, analysis.prediction.label) if attribution else None
    return second_opinion(backend, analysis.text, bench.labels, evidence, values,
                          allow_remote=allow_remote, cancel=cancel, on_text=on_text,
                          max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens)


def store_analysis(store, analysis: CaseAnalysis, source: str = "typed",
                   metadata: dict | None = None) -> tuple[int, bool]:
    """File a case with its prediction and decision in one transaction: (case id, new?).

    A case already stored (same text) gets the new prediction and decision appended, so
    re-analysing with another model keeps both in its trail."""
    added = store.add_case(analysis.text, source, metadata,
                           prediction=analysis.prediction.to_dict(),
                           escalation=analysis.decision.to_dict())
    if not added.new:
        prediction_id = store.record_prediction(added.id, analysis.prediction.to_dict())
        store.record_escalation(added.id, analysis.decision.to_dict(), prediction_id)
    return added.id, added.new


# -- stored records back into domain objects ------------------------------------------------
# The store keeps each record's ``to_dict()``; a case reopened from the history is rebuilt
# from those so the LLM and the views treat it exactly like a freshly analysed one.

def analysis_from_records(text: str, prediction: dict, decision: dict) -> CaseAnalysis:
    """A ``CaseAnalysis`` from a stored prediction and escalation decision."""
    from models.escalation import EscalationDecision
    from models.types import Prediction

    kept = prediction.get("prediction_set")
    rebuilt = Prediction(**{**prediction, "prediction_set": None if kept is None else tuple(kept)})
    tuples = {k: tuple(decision.get(k) or ()) for k in
              ("reasons", "reason_codes", "prediction_set")}
    return CaseAnalysis(text, rebuilt, EscalationDecision(**{**decision, **tuples}))


def attribution_from_dict(data: dict):
    """An ``explainers.attribution.Attribution`` from its stored ``to_dict()`` form."""
    from explainers.attribution import Attribution, Feature
    from explainers.faithfulness import Faithfulness, Flip

    derived = ("efficiency_gap", "efficiency_tolerance")  # computed, not fields
    fields_ = {k: v for k, v in data.items() if k not in derived}
    flip = fields_.get("flip")
    return Attribution(**{
        **fields_,
        "classes": tuple(fields_["classes"]),
        "features": tuple(Feature(**f) for f in fields_["features"]),
        "faithfulness": Faithfulness(**fields_["faithfulness"])
        if fields_.get("faithfulness") else None,
        "flip": None if not flip else Flip(
            words=tuple(flip["words"]) if flip.get("words") else None,
            spans=tuple(tuple(s) for s in flip.get("spans") or ()),
            new_label=flip.get("new_label"), searched=flip.get("searched", 0),
            model_calls=flip.get("model_calls", 0)),
    })


def llm_preview(backend, bench: Workbench, analysis: CaseAnalysis, attribution=None) -> dict:
    """Exactly what ``ask_llm`` would send to ``backend`` for this case (de-identified when
    the backend is remote), without sending anything: for the reviewer to see first."""
    from explainers.prompts import build_prompt
    from explainers.second_opinion import DEFAULT_MAX_TOKENS, _fits_for, evidence_of, outgoing

    evidence = evidence_of(analysis.prediction, analysis.decision, attribution)
    text, redactions = analysis.text, ()
    if backend.is_remote:
        text, redactions, evidence = outgoing(analysis.text, evidence)
    prompt = build_prompt(text, bench.labels, evidence, None,
                          _fits_for(backend, DEFAULT_MAX_TOKENS))
    return {"remote": backend.is_remote, "base_url": backend.base_url, "backend": backend.name,
            "model": backend.model, "sent_text": text, "redactions": list(redactions),
            "messages": prompt.messages, "prompt_sha256": prompt.sha256}
