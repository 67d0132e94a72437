"""The model-card summary in the report. The cards themselves are read by
``models.model_card`` (``read_model_card``, ``model_card_loader``): one reader for the app,
the command line and the PDF."""

from __future__ import annotations

from typing import Any

from reportlab.platypus import Flowable

from app.reports.document import ReportContext, utc
from models.model_card import escalation_sentences, model_card_loader, training_sentence
from models.types import ModelCard

__all__ = ["model_card_flowables", "model_card_loader"]


def _rows(card: ModelCard) -> list[tuple[str, str]]:
    rows = [("Version", _version(card)), ("Created", utc(card.created)),
            ("Base model", _base(card.base_model)),
            ("Training data", _data(card.training_data)),
            ("Training", training_sentence(card.training) if card.training else "–"),
            ("Metrics (test split)", _metrics(card))]
    if card.escalation:
        rows.append(("Escalation (test split)", _escalation(card)))
    rows += [("Intended use", card.intended_use or "–"),
             ("Limitations", "\n".join(f"• {item}" for item in card.limitations) or "–"),
             ("Card integrity", card.integrity or "–")]
    return rows


def _version(card: ModelCard) -> str:
    weights = card.weights_sha256
    return card.model_id + (f"\nweights sha256 {weights}" if weights else "")


# The nested evidence (base model, data, metrics) stays the JSON the training wrote.

def _base(base: dict[str, Any]) -> str:
    return " ".join(str(base[k]) for k in ("name", "package") if base.get(k)) or "–"


def _data(data: dict[str, Any]) -> str:
    rows = data.get("rows") or {}
    split = ", ".join(f"{k} {v}" for k, v in rows.items())
    return f"{data.get('name', '–')}" + (f"; rows per split: {split}" if split else "")


def _metrics(card: ModelCard) -> str:
    test = card.test_metrics
    if not test:
        return "–"
    nan = float("nan")
    line = (f"accuracy {test.get('accuracy', nan):.3f}, macro-F1 "
            f"{test.get('macro_f1', nan):.3f} on {test.get('n', '?')} cases")
    if test.get("ece_after") is not None:
        line += (f"; calibration error (ECE, 15 bins) {test.get('ece_before', nan):.3f}"
                 f" → {test.get('ece_after'):.3f} after temperature scaling")
    return line + (f"\n{card.comparison}" if card.comparison else "")


def _escalation(card: ModelCard) -> str:
    return " ".join(x for x in escalation_sentences(card) if x) or "–"


def model_card_flowables(model_id: str, card: ModelCard | None,
                         ctx: ReportContext) -> list[Flowable]:
    """The card summary for one model: version hash, data, metrics, intended use, limits."""
    w = ctx.writer
    heading = w.heading(f"Model card: {model_id}")
    if card is None:
        return [heading, w.p(f"No model card found for {model_id}: the model is not in this "
                             "data directory (removed, or the report was made elsewhere).",
                             w.styles.warning)]
    if card.problem:
        return [heading, w.p(f"The model card is unusable: {card.problem}.", w.styles.warning)]
    return [heading, w.fields(_rows(card))]
