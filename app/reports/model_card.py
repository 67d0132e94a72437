"""The model-card summary in the report, and the loader that finds a model's card on disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reportlab.platypus import Flowable

from app.reports.document import ReportContext, utc
from models.artifact import MANIFEST_FILE, sha256_file
from models.model_card import escalation_summary

CARD_FILE = "model_card.json"


def model_card_loader(data_dir: Path | str) -> Callable[[str], dict | None]:
    """A function from model id to its model card (``<data_dir>/models/<id>/model_card.json``),
    or None when the model is not there. Cards are read once per loader. The card's SHA-256 is
    compared with the model's manifest and the result kept under ``"integrity"``."""
    models_dir = Path(data_dir) / "models"
    cache: dict[str, dict | None] = {}

    def card_for(model_id: str) -> dict | None:
        if model_id not in cache:
            cache[model_id] = _read_card(models_dir, model_id)
        return cache[model_id]

    return card_for


def _read_card(models_dir: Path, model_id: str) -> dict | None:
    # A model id is one directory name; anything else must not reach the file system.
    if not model_id or model_id.startswith(".") or Path(model_id).name != model_id:
        return None
    path = models_dir / model_id / CARD_FILE
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"model_id": model_id, "problem": f"the model card cannot be read ({exc})"}
    if not isinstance(card, dict):
        return {"model_id": model_id, "problem": "the model card is not a JSON object"}
    return {**card, "integrity": _integrity(path)}


def _integrity(card_path: Path) -> str:
    manifest_path = card_path.parent / MANIFEST_FILE
    try:
        expected = json.loads(manifest_path.read_text(encoding="utf-8"))["sha256"][CARD_FILE]
    except (OSError, ValueError, KeyError, TypeError):
        return "not checked: the model has no readable manifest"
    if sha256_file(card_path) == expected:
        return "the card file matches the model's manifest (SHA-256)"
    return "the card file DIFFERS from the model's manifest: it was changed after training"


def _rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("Version", _version(card)), ("Created", utc(card.get("created"))),
            ("Base model", _base(card.get("base_model") or {})),
            ("Training data", _data(card.get("training_data") or {})),
            ("Metrics (test split)", _metrics(card))]
    escalation = card.get("escalation")
    if escalation:
        rows.append(("Escalation (test split)", _escalation(escalation)))
    rows += [("Intended use", card.get("intended_use") or "–"),
             ("Limitations", "\n".join(f"• {item}" for item in card.get("limitations") or [])
              or "–"),
             ("Card integrity", card.get("integrity", "–"))]
    return rows


def _version(card: dict[str, Any]) -> str:
    weights = (card.get("hashes") or {}).get("model.safetensors")
    return f"{card.get('model_id')}" + (f"\nweights sha256 {weights}" if weights else "")


def _base(base: dict[str, Any]) -> str:
    return " ".join(str(base[k]) for k in ("name", "package") if base.get(k)) or "–"


def _data(data: dict[str, Any]) -> str:
    rows = data.get("rows") or {}
    split = ", ".join(f"{k} {v}" for k, v in rows.items())
    return f"{data.get('name', '–')}" + (f"; rows per split: {split}" if split else "")


def _metrics(card: dict[str, Any]) -> str:
    test = (card.get("metrics") or {}).get("test") or {}
    if not test:
        return "–"
    line = (f"accuracy {test.get('accuracy', float('nan')):.3f}, macro-F1 "
            f"{test.get('macro_f1', float('nan')):.3f} on {test.get('n', '?')} cases")
    if "ece_after" in test:
        line += (f"; calibration error (ECE, 15 bins) {test.get('ece_before', float('nan')):.3f}"
                 f" → {test['ece_after']:.3f} after temperature scaling")
    comparison = card.get("comparison")
    return line + (f"\n{comparison}" if comparison else "")


def _escalation(escalation: dict[str, Any]) -> str:
    try:
        summary = escalation_summary(escalation)
    except (KeyError, TypeError, ValueError):
        summary = ""  # an older card without every field: show what there is
    return " ".join(x for x in (escalation.get("guarantee"), summary) if x) or "–"


def model_card_flowables(model_id: str, card: dict | None, ctx: ReportContext) -> list[Flowable]:
    """The card summary for one model: version hash, data, metrics, intended use, limits."""
    w = ctx.writer
    heading = w.heading(f"Model card: {model_id}")
    if card is None:
        return [heading, w.p(f"No model card found for {model_id}: the model is not in this "
                             "data directory (removed, or the report was made elsewhere).",
                             w.styles.warning)]
    if card.get("problem"):
        return [heading, w.p(f"The model card is unusable: {card['problem']}.", w.styles.warning)]
    return [heading, w.fields(_rows(card))]
