"""The model card: what the model is for, what it was trained on, how well it does, and where
it falls short — as ``model_card.json`` for tools and ``MODEL_CARD.md`` for people."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from models.types import ModelCard
from models.windows import READ_LIMIT_TOKENS

INTENDED_USE = (
    "Decision support for a human reviewer who reads each case: the model proposes a label with "
    "calibrated probabilities, and uncertain cases are escalated. It does not decide cases on "
    "its own and is not a medical device or a credit-decision system."
)


def comparison_sentence(model: dict, baseline: dict) -> str:
    """Say plainly whether the fine-tuned model beats the TF-IDF baseline on the test split."""
    parts = []
    for key, name in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
        delta = model[key] - baseline[key]
        verdict = "above" if delta > 0 else "below" if delta < 0 else "level with"
        parts.append(
            f"{name} {model[key]:.3f} vs {baseline[key]:.3f} ({delta:+.3f}, {verdict} the baseline)"
        )
    return "On the test split the fine-tuned model scores " + "; ".join(parts) + "."


def reading_limit(config: dict) -> str:
    """What of a long case the model reads (a model trained before pooling reads one window)."""
    window = config["max_length"]
    if config.get("pooling", "first") == "first":
        return (f"Reads at most the first {window} tokens of a case; longer cases are cut, and "
                "the answer says so.")
    return (f"Reads a case whole in overlapping {window}-token windows whose answers are "
            f"pooled ({config['pooling']} of the logits), up to {READ_LIMIT_TOKENS:,} tokens "
            "(about 6,000 English words); past that the rest is not read, and the answer "
            "says so.")


def limitations(card: dict) -> list[str]:
    data = card["training_data"]
    test = card["metrics"]["test"]
    weakest = min(test["per_class"].items(), key=lambda item: item[1]["f1"])
    return [
        f"Trained on {data['rows']['train']} rows of {data['name']}; on text from another "
        "domain, population or writing style its accuracy is unknown and likely lower.",
        reading_limit(card['training']['config']),
        f"Weakest class on the test split: '{weakest[0]}' (F1 {weakest[1]['f1']:.2f}, "
        f"{weakest[1]['support']} cases); its predictions deserve the most scrutiny.",
        f"Test metrics come from {test['n']} cases; with so few, they are uncertain by several "
        "points.",
        "Probabilities are calibrated by one temperature fitted on the validation split; they can "
        "drift when the incoming cases differ from the training data.",
        "The base encoder was trained on English text; other languages are not supported.",
    ]


def _per_class_table(per_class: dict, baseline: dict) -> list[str]:
    rows = ["| class | precision | recall | F1 | baseline F1 | support |",
            "| --- | --- | --- | --- | --- | --- |"]
    for label, m in per_class.items():
        base_f1 = baseline.get(label, {}).get("f1", float("nan"))
        rows.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
                    f"| {base_f1:.3f} | {m['support']} |")
    return rows


def escalation_summary(e: dict) -> str:
    """The escalation evidence in two sentences, for the card and the command line."""
    if e["n_auto"]:
        low, high = e["auto_error_ci"]
        auto = (f"{e['coverage']:.0%} of {e['n_test']} test cases were decided automatically "
                f"(threshold {e['threshold']:.2f}); {e['auto_error']:.1%} of them were wrong "
                f"(95 % interval {low:.1%}–{high:.1%}; bound {e['alpha']:.0%}).")
    else:
        auto = f"No test case was decided automatically ({e['n_test']} escalated)."
    escalated = ("" if e["escalated_error"] is None else
                 f" Among escalated cases the model was wrong {e['escalated_error']:.1%} "
                 "of the time.")
    return (f"{auto}{escalated} Conformal {e['set_score'].upper()} sets at "
            f"{1 - e['alpha']:.0%}: coverage {e['set_coverage']:.1%}, mean size "
            f"{e['set_size_mean']:.2f}. AURC {e['aurc']:.3f}.")


def escalation_sentences(card: ModelCard) -> tuple[str, str]:
    """The guarantee and the ``escalation_summary`` of a card's escalation evidence, for the
    views and the PDF; empty strings for what the card lacks (no evidence, or an older card
    without every number)."""
    evidence = card.escalation or {}
    try:
        summary = escalation_summary(evidence) if evidence else ""
    except (KeyError, TypeError, ValueError):
        summary = ""
    return str(evidence.get("guarantee") or ""), summary


def _escalation_section(e: dict | None) -> list[str]:
    if not e:
        return []
    return ["## Escalation (test split)", "", e["guarantee"], "", escalation_summary(e), ""]


def render_markdown(card: dict) -> str:
    test, base = card["metrics"]["test"], card["baseline"]["test"]
    data, training = card["training_data"], card["training"]
    lines = [
        f"# Model card: {card['model_id']}",
        "",
        f"Created {card['created']} from the base model {card['base_model']['name']} "
        f"({card['base_model']['package']}).",
        "",
        "## Intended use", "", card["intended_use"], "",
        "## Training data", "",
        f"{data['name']}. Rows per split: "
        + ", ".join(f"{k} {v}" for k, v in data["rows"].items()) + ".",
        f"Split recipe: {data['split_recipe']['strategy']}, seed {data['split_recipe']['seed']}.",
        "",
        "## Metrics (test split)", "",
        card["comparison"], "",
        f"Accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}. "
        f"Expected calibration error (15 bins) {test['ece_before']:.3f} before and "
        f"{test['ece_after']:.3f} after temperature scaling (T = {training['temperature']:.3f}).",
        "",
        *_per_class_table(test["per_class"], base["per_class"]), "",
        f"Baseline: {card['baseline']['description']}: accuracy {base['accuracy']:.3f}, "
        f"macro-F1 {base['macro_f1']:.3f}.",
        "",
        *_escalation_section(card.get("escalation")),
        "## Limitations", "",
        *[f"- {item}" for item in card["limitations"]], "",
        "## Training", "",
        training_sentence(training),
        "",
        "## Hashes (SHA-256)", "",
        *[f"- `{name}`: `{digest}`" for name, digest in card["hashes"].items()],
        f"- base model weights: `{card['base_model']['weights_sha256']}`", "",
    ]
    return "\n".join(lines)


# -- reading a card: the one place that opens model_card.json ---------------------------------

CARD_FILE = "model_card.json"


def read_model_card(model_dir: Path | str, model_id: str | None = None) -> ModelCard | None:
    """The card of the model in ``model_dir``, with its integrity against the manifest;
    ``None`` when the directory has no card, an unreadable card says why in ``problem``."""
    model_dir = Path(model_dir)
    model_id = model_id or model_dir.name
    path = model_dir / CARD_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        card = ModelCard.from_dict(raw)
    except (OSError, ValueError) as exc:  # RecordError is a ValueError
        return ModelCard.unreadable(model_id, f"the model card cannot be read ({exc})")
    return replace(card, integrity=card_integrity(path))


def card_integrity(card_path: Path) -> str:
    """Whether the card file is the one the training wrote (its manifest's SHA-256)."""
    from models.artifact import MANIFEST_FILE, sha256_file

    try:
        manifest = json.loads((card_path.parent / MANIFEST_FILE).read_text(encoding="utf-8"))
        expected = manifest["sha256"][CARD_FILE]
    except (OSError, ValueError, KeyError, TypeError):
        return "not checked: the model has no readable manifest"
    if sha256_file(card_path) == expected:
        return "the card file matches the model's manifest (SHA-256)"
    return "the card file DIFFERS from the model's manifest: it was changed after training"


def model_card_loader(data_dir: Path | str) -> Callable[[str], ModelCard | None]:
    """A function from model id to its card (``<data_dir>/models/<id>/``), read once each;
    ``None`` when the model is not there."""
    models_dir = Path(data_dir) / "models"
    cache: dict[str, ModelCard | None] = {}

    def card_for(model_id: str) -> ModelCard | None:
        if model_id not in cache:
            # A model id is one directory name; anything else must not reach the file system.
            safe = bool(model_id) and not model_id.startswith(".") and \
                Path(model_id).name == model_id
            cache[model_id] = read_model_card(models_dir / model_id, model_id) if safe else None
        return cache[model_id]

    return card_for


def training_sentence(training: dict) -> str:
    """How the model was trained, in one sentence (a card from before recipes existed was a
    fine-tune)."""
    return _recipe_sentence(training) + _stacking_sentence(training.get("stacking"))


def _stacking_sentence(decision: dict | None) -> str:
    """Whether the TF-IDF baseline was stacked with the encoder, and why ("" when it was not
    considered)."""
    if not decision:
        return ""
    if not decision.get("stack"):
        return f" Not stacked with TF-IDF ({decision['reason'].removeprefix('not stacked: ')})."
    weights = decision.get("weights") or {}
    joined = (f": {weights['w_model']:.2f} × the encoder's logits + {weights['w_tfidf']:.2f} × "
              "TF-IDF log-probabilities" if weights else "")
    return f" Stacked with the TF-IDF baseline{joined} ({decision['reason']})."


def _recipe_sentence(training: dict) -> str:
    seconds = training.get("seconds")
    took = f"{seconds:.0f} s" if isinstance(seconds, int | float) else "time not recorded"
    why = f" ({training['recipe_reason']})" if training.get("recipe_reason") else ""
    recipe = training.get("recipe", "fine-tune")
    if recipe == "stacked":
        recipe = "fine-tune"
    if recipe == "setfit":
        return (f"SetFit{why}: contrastive pairs on the encoder, then a logistic-regression "
                f"head; {took}.")
    history = training.get("history") or []
    if recipe == "ensemble":
        members = sorted({row.get("member") for row in history if row.get("member")})
        runs = "/".join(str(sum(row.get("member") == m for row in history)) for m in members)
        return (f"Seed ensemble of {len(members)} fine-tunes{why}: epochs run {runs}; "
                f"{took} in all.")
    return (f"Fine-tune{why}: {training.get('epochs_run', '?')} epochs run, best epoch "
            f"{training.get('best_epoch', '?')}; {took}.")
