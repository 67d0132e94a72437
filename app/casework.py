"""The workbench: the active (or a named) model loaded with its escalation policy and card.

What a case goes through with it is ``app.pipeline``; this module only loads and registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.types import ModelCard


@dataclass
class Workbench:
    """The loaded classifier and its escalation policy (``None`` when none is fitted)."""

    classifier: object
    policy: object | None
    model_dir: Path
    card: ModelCard | None = None

    @property
    def model_id(self) -> str:
        return self.classifier.model_id

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels


def load_classifier(data_dir: Path, model_id: str | None = None):
    """The active (or named) model's classifier; raises CasewiseError when there is none."""
    from models.classifier import Classifier
    from models.registry import ModelRegistry

    registry = ModelRegistry(data_dir)
    return Classifier.load(registry.path_of(model_id) if model_id else registry.active_path())


def load_workbench(data_dir: Path, model_id: str | None = None) -> Workbench:
    """The active (or named) model with its policy; raises CasewiseError when there is none."""
    from models.escalation import load_policy
    from models.model_card import read_model_card

    classifier = load_classifier(data_dir, model_id)
    path = Path(classifier.path)
    policy = load_policy(path, classifier.model_id, classifier.labels)
    return Workbench(classifier, policy, path, read_model_card(path, classifier.model_id))


def _weights_sha256(model_dir: Path) -> str | None:
    from models.artifact import MANIFEST_FILE, read_json

    manifest = model_dir / MANIFEST_FILE
    return read_json(manifest).get("sha256", {}).get("model.safetensors") \
        if manifest.exists() else None


def model_identity(model_dir: Path) -> tuple[str | None, ModelCard | None]:
    """The weights' SHA-256 (from the manifest) and the model card, to register a model."""
    from models.model_card import read_model_card

    card = read_model_card(model_dir)
    return _weights_sha256(model_dir), card if card is None or card.problem is None else None


def register_in_store(store, bench: Workbench) -> None:
    """Make sure the store knows the model that will be cited by its predictions."""
    card = bench.card if bench.card is not None and bench.card.problem is None else None
    store.register_model(bench.model_id, _weights_sha256(bench.model_dir), card)
