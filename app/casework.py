"""The workbench: the active (or a named) model loaded with its escalation policy and card.

What a case goes through with it is ``app.pipeline``; this module only loads and registers.

Signed models: every application path reaches the models through ``model_registry``, whose
``ManifestTrust`` (``model_trust``) trusts this installation's key and signs with it. So
training here signs the new model, activating a model signs it (how an admin vouches for a
model trained elsewhere), and loading refuses a model or policy whose manifest that key did
not sign. Nothing in ``app`` outside this module builds a ``ModelRegistry`` or calls
``Classifier.load``/``load_policy`` itself (tests/test_signed_models.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.types import ModelCard

if TYPE_CHECKING:
    from models.manifest_signature import ManifestTrust
    from models.registry import ModelRegistry


def model_trust(config_folder: Path | None = None) -> ManifestTrust:
    """Whose model signatures count here: this installation's key (made on first use in the
    configuration folder), which is also the key that signs."""
    from app.accounts.installation import installation_key
    from models.manifest_signature import ManifestTrust, SigningKey

    key = installation_key(config_folder)
    return ManifestTrust.of([key.public_key], SigningKey(key.private, key.label))


def model_registry(data_dir: Path) -> ModelRegistry:
    """The models of ``data_dir`` as the application sees them: signed and checked."""
    from models.registry import ModelRegistry

    return ModelRegistry(data_dir, model_trust())


def activate_model(data_dir: Path, model_id: str, recorded_weights: Sequence[str] = ()) -> Path:
    """Vouch for a model on this installation and make it the active one: check its files
    (and its policies') against their manifests, sign the manifests with the installation
    key, then point ``active.json`` at it. Returns its directory. Callers decide who may (an
    admin, once the history has accounts). ``recorded_weights``: what case histories recorded
    for this model id (``CaseRepository.recorded_weights``); weights that differ are refused."""
    registry = model_registry(data_dir)
    path = registry.path_of(model_id)
    _refuse_changed_weights(path, model_id, recorded_weights)
    registry.activate(model_id)
    return path


def _refuse_changed_weights(path: Path, model_id: str, recorded: Sequence[str]) -> None:
    """Signing vouches for what the files are now; a model whose weights differ from those a
    case history recorded for its id was changed since it was used (and its manifest
    recomputed, or the files would not pass), so no admin should vouch for it again."""
    now = _weights_sha256(path)
    for known in recorded:
        if known and now != known:
            from models.errors import ModelIntegrityError

            raise ModelIntegrityError(
                f"Model {model_id}'s weights are not the ones the case history recorded for "
                f"it (SHA-256 {known[:16]}…, now {str(now)[:16]}…): they were changed after "
                "it was used. Do not use it: train it again, or restore its folder from a "
                "copy made before the change.")


@dataclass
class Workbench:
    """The loaded classifier and its escalation policy (``None`` when none is fitted)."""

    classifier: object
    policy: object | None
    model_dir: Path
    card: ModelCard | None = None
    # What the audited AUTO decisions say of the policy's bound (``pipeline.watch_guarantee``);
    # while it raises the alarm, every case is escalated.
    guarantee: object | None = None
    # The model's amortized explainer (explainers.amortized_store), None when it has none or
    # when it was refused; then ``explainer_problem`` says why.
    amortized: object | None = None
    explainer_problem: str | None = None

    @property
    def model_id(self) -> str:
        return self.classifier.model_id

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels


def load_classifier(data_dir: Path, model_id: str | None = None):
    """The active (or named) model's classifier; raises CasewiseError when there is none, or
    ModelIntegrityError when its files or its signature do not check out."""
    return model_registry(data_dir).classifier(model_id)


def load_workbench(data_dir: Path, model_id: str | None = None) -> Workbench:
    """The active (or named) model with its policy; raises CasewiseError when there is none."""
    from models.model_card import read_model_card

    registry = model_registry(data_dir)
    classifier = registry.classifier(model_id)
    path = Path(classifier.path)
    policy = registry.policy(path, classifier.model_id, classifier.labels)
    amortized, problem = load_amortized(registry, path, classifier)
    return Workbench(classifier, policy, path, read_model_card(path, classifier.model_id),
                     amortized=amortized, explainer_problem=problem)


def load_amortized(registry, model_dir: Path, classifier) -> tuple[object | None, str | None]:
    """The model's amortized explainer, checked like the model; one that fails its check is
    not used (the model still is) and the reason is kept for the window and the CLI."""
    from explainers.amortized_store import load_explainer
    from models.errors import ModelIntegrityError

    try:
        return load_explainer(model_dir, classifier.model_id, classifier.labels,
                              trust=registry.trust), None
    except ModelIntegrityError as exc:
        return None, str(exc)


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
