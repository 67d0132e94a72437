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
    MANIFEST_FILE,
    META_FILE,
    PARTIAL_PREFIX,
    read_json,
    verify_artifact,
    write_json_atomically,
)
from models.errors import DataDirError, ModelIntegrityError, ModelNotFound
from models.manifest_signature import (
    EXPLAINERS_DIR,
    POLICIES_DIR,
    ManifestTrust,
    explainer_subject,
    model_subject,
    policy_subject,
)

if TYPE_CHECKING:  # annotations only: these import torch
    from models.classifier import Classifier
    from models.escalation import EscalationPolicy

ACTIVE_FILE = "active.json"
ACTIVATE_ADVICE = ("Choose the active model again: `python main.py models` lists them and "
                   "`python main.py models --activate ID` activates one.")


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
    problem: str | None = None  # set when the model is damaged: loading it would fail
    # Set when its files are intact but this installation's key did not sign it (trained
    # elsewhere): loading refuses it until an admin activates it, which signs it.
    unsigned: str | None = None
    # Set when training found it no better than chance, so it was not made active.
    chance_warning: str | None = None

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
        path = self.models_dir / str(model_id)
        if not (self._is_model_name(model_id) and (path / META_FILE).is_file()):
            known = ", ".join(self._ids()) or "none yet"
            raise ModelNotFound(f"No model '{model_id}' in {self.models_dir}. Models: {known}.")
        return path

    def _is_model_name(self, model_id: object) -> bool:
        """A model is a directory directly inside the models folder, named by its id: never a
        path (``../elsewhere``), a hidden or half-written one, or a link to elsewhere."""
        return (isinstance(model_id, str) and model_id not in ("", ".", "..")
                and "/" not in model_id and "\\" not in model_id and "\0" not in model_id
                and not model_id.startswith((".", PARTIAL_PREFIX))
                and not (self.models_dir / model_id).is_symlink())

    def _ids(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir()
                      if self._is_model_name(p.name) and (p / META_FILE).is_file())

    def active_id(self) -> str | None:
        """The active model's id; ModelIntegrityError when ``active.json`` names anything but
        a model directory inside the models folder (a path such as ``../../elsewhere/evil``
        would load a model from outside it)."""
        active, problem = self.active_pointer()
        if problem:
            raise ModelIntegrityError(problem)
        return active

    def active_pointer(self) -> tuple[str | None, str | None]:
        """(the active id, None), (None, None) when none is active, or (None, what is wrong)."""
        pointer = self.models_dir / ACTIVE_FILE
        if not pointer.is_file():
            return None, None
        try:
            record = read_json(pointer)
        except ModelIntegrityError as exc:
            return None, f"{exc}. {ACTIVATE_ADVICE}"
        model_id = record.get("id") if isinstance(record, dict) else None
        if not self._is_model_name(model_id):
            return None, (f"{pointer} names {model_id!r} as the active model, which is not a "
                          f"model folder inside {self.models_dir}; it is not loaded. "
                          f"{ACTIVATE_ADVICE}")
        return model_id, None

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
        subjects.update({d: explainer_subject(path.name, d.name)
                         for d in sub_artifact_dirs(path, EXPLAINERS_DIR)})
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
        """Every model, each checked as loading checks it (files against the manifest, with
        the hash cache loading keeps, so listing stays cheap; and the signature)."""
        active, _ = self.active_pointer()
        found = [self._record(self.models_dir / name, active) for name in self._ids()]
        return sorted(found, key=lambda r: (r.created, r.id))

    def record(self, model_id: str) -> ModelRecord:
        """One model, checked as ``records`` checks it."""
        path = self.path_of(model_id)
        active, _ = self.active_pointer()
        return self._record(path, active)

    def _record(self, path: Path, active: str | None) -> ModelRecord:
        try:
            meta = read_json(path / META_FILE)
            if not isinstance(meta, dict):
                raise ModelIntegrityError(f"{path / META_FILE} is not a model description.")
        except ModelIntegrityError as exc:
            # One damaged model must not hide the others; list it with what is wrong.
            return ModelRecord(path.name, str(path), "", path.name == active, [], "", None, None,
                               problem=str(exc))
        problem = unsigned = None
        try:
            unsigned = self._check(path)
        except ModelIntegrityError as exc:
            problem = str(exc)  # what loading it would say
        except OSError as exc:
            problem = f"Model {path.name} cannot be read ({exc.strerror or exc})."
        test = meta.get("metrics", {}).get("test", {})
        chance = meta.get("chance_test")
        return ModelRecord(
            id=path.name,
            path=str(path),
            created=meta.get("created", ""),
            active=path.name == active,
            labels=list(meta.get("labels", [])),
            training_data=meta.get("training_data", {}).get("name", ""),
            test_accuracy=test.get("accuracy"),
            test_macro_f1=test.get("macro_f1"),
            problem=problem,
            unsigned=unsigned,
            chance_warning=(chance.get("message") if isinstance(chance, dict)
                            and chance.get("passed") is False else None),
        )

    def _check(self, path: Path) -> str | None:
        """Check the model as ``Classifier.load`` does; raise ModelIntegrityError if its files
        do not match its manifest. A signature this installation does not trust is returned,
        not raised: such a model is intact, and activating it is how an admin vouches for it."""
        if self.trust is None:
            verify_artifact(path)
            return None
        manifest = path / MANIFEST_FILE
        try:
            self.trust.check(path, model_subject(path), manifest.read_bytes())
        except OSError:
            verify_artifact(path)  # names the missing manifest as loading would
            return None
        except ModelIntegrityError as exc:
            # Without a trusted signature the sealed hash cache is not vouched for either:
            # hash every file.
            verify_artifact(path, use_cache=False)
            return str(exc)
        verify_artifact(path, trust=self.trust)
        return None


def policy_dirs(model_dir: Path) -> list[Path]:
    """The model's escalation policies, oldest first (also ``models.escalation.policy_dirs``;
    here so that signing a model does not import torch)."""
    return sub_artifact_dirs(model_dir, POLICIES_DIR)


def sub_artifact_dirs(model_dir: Path, kind: str) -> list[Path]:
    """The artifacts a model keeps under ``kind`` (policies, explainers), oldest first."""
    parent = Path(model_dir) / kind
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))
