"""The models in a data directory, and which one is active.

Each model is a directory under ``<data>/models/``; the active one is named in
``<data>/models/active.json``, replaced atomically so a crash never leaves it half-written.

A registry made with a ``ManifestTrust`` (the application's, ``app.casework.model_registry``)
is the one door to its models: ``classifier`` and ``policy`` load only what a trusted key
signed, training through it signs the new model, and ``activate`` signs the model it
activates (how an admin vouches for a model trained elsewhere). Without one (library use,
tests of this layer) signatures are neither written nor checked.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models.artifact import (
    META_FILE,
    PARTIAL_PREFIX,
    read_json,
    verify_artifact,
    write_json_atomically,
)
from models.errors import DataDirError, ModelIntegrityError, ModelNotFound
from models.manifest_signature import POLICIES_DIR, ManifestTrust, model_subject, policy_subject

if TYPE_CHECKING:  # annotations only: these import torch
    from models.classifier import Classifier
    from models.escalation import EscalationPolicy

ACTIVE_FILE = "active.json"


@dataclass(frozen=True)
class ModelRecord:
    """One trained model as the registry lists it."""

    id: str
    path: str
    created: str
    active: bool
    labels: list[str]
    training_data: str
    test_accuracy: float | None
    test_macro_f1: float | None
    problem: str | None = None  # set when the model's description cannot be read

    def to_dict(self) -> dict:
        return asdict(self)


class ModelRegistry:
    def __init__(self, data_dir: Path, trust: ManifestTrust | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.models_dir = self.data_dir / "models"
        self.trust = trust

    def ensure_writable(self) -> None:
        """Fail before any long work if models cannot be saved here."""
        probe = self.models_dir / f".write-test-{uuid.uuid4().hex}"
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataDirError(
                f"Cannot write to the data directory {self.data_dir} ({exc.strerror or exc}). "
                "Make it writable, or set CASEWISE_HOME to a folder you can write to."
            ) from exc

    def path_of(self, model_id: str) -> Path:
        path = self.models_dir / model_id
        if model_id.startswith(PARTIAL_PREFIX) or not (path / META_FILE).is_file():
            known = ", ".join(r.id for r in self.records()) or "none yet"
            raise ModelNotFound(f"No model '{model_id}'. Models: {known}.")
        return path

    def active_id(self) -> str | None:
        pointer = self.models_dir / ACTIVE_FILE
        if not pointer.is_file():
            return None
        return read_json(pointer).get("id")

    def active_path(self) -> Path:
        model_id = self.active_id()
        if model_id is None:
            raise ModelNotFound(
                "No model is active yet. Train one with `python main.py train` "
                "(or activate one with `python main.py models --activate ID`)."
            )
        return self.path_of(model_id)

    def activate(self, model_id: str) -> None:
        """Make ``model_id`` active, after checking its files against their manifest; with a
        signing key, sign it (see ``sign``)."""
        self.sign(model_id)
        write_json_atomically(self.models_dir / ACTIVE_FILE, {"id": model_id})

    def sign(self, model_id: str) -> Path:
        """Check the model's files, and its escalation policies', against their manifests,
        then sign every manifest with this registry's key: whoever may call this vouches for
        the model from now on. Without a key, they must already be signed by a trusted one."""
        path = self.path_of(model_id)
        subjects = {path: model_subject(path)}
        subjects.update({d: policy_subject(path.name, d.name) for d in policy_dirs(path)})
        signing = self.trust is not None and self.trust.signer is not None
        for directory, subject in subjects.items():  # all checked before any is signed
            # Unsigned, or signed elsewhere, is why a model is signed: only the files count,
            # each hashed afresh (a hash cache not sealed by this key could be forged).
            verify_artifact(directory, use_cache=not signing,
                            trust=None if signing else self.trust, subject=subject)
        if signing:
            for directory, subject in subjects.items():
                self.trust.sign(directory, subject)
        return path

    def sign_new(self, scratch: Path, name: str) -> None:
        """``write_artifact``'s ``sign``: a model trained through this registry is signed
        before its directory is published."""
        if self.trust is not None:
            self.trust.sign(scratch, name)

    def classifier(self, model_id: str | None = None) -> Classifier:
        """The active (or named) model, verified (and its signature checked with ``trust``)."""
        from models.classifier import Classifier

        path = self.path_of(model_id) if model_id else self.active_path()
        return Classifier.load(path, trust=self.trust)

    def policy(self, model_dir: Path, model_id: str, labels: list[str],
               policy_dir: Path | None = None) -> EscalationPolicy | None:
        """The model's newest (or the named) escalation policy, checked as models are."""
        from models.escalation import load_policy

        return load_policy(Path(model_dir), model_id, labels, policy_dir, trust=self.trust)

    def records(self) -> list[ModelRecord]:
        if not self.models_dir.is_dir():
            return []
        active = self.active_id()
        found = [
            self._record(path, active)
            for path in self.models_dir.iterdir()
            if path.is_dir() and not path.name.startswith(".") and (path / META_FILE).is_file()
        ]
        return sorted(found, key=lambda r: (r.created, r.id))

    def _record(self, path: Path, active: str | None) -> ModelRecord:
        try:
            meta = read_json(path / META_FILE)
        except ModelIntegrityError as exc:
            # One damaged model must not hide the others; list it with what is wrong.
            return ModelRecord(path.name, str(path), "", path.name == active, [], "", None, None,
                               problem=str(exc))
        test = meta.get("metrics", {}).get("test", {})
        return ModelRecord(
            id=path.name,
            path=str(path),
            created=meta.get("created", ""),
            active=path.name == active,
            labels=list(meta.get("labels", [])),
            training_data=meta.get("training_data", {}).get("name", ""),
            test_accuracy=test.get("accuracy"),
            test_macro_f1=test.get("macro_f1"),
        )


def policy_dirs(model_dir: Path) -> list[Path]:
    """The model's escalation policies, oldest first (also ``models.escalation.policy_dirs``;
    here so that signing a model does not import torch)."""
    parent = Path(model_dir) / POLICIES_DIR
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
