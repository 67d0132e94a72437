"""The models in a data directory, and which one is active.

Each model is a directory under ``<data>/models/``; the active one is named in
``<data>/models/active.json``, replaced atomically so a crash never leaves it half-written.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from models.artifact import (
    META_FILE,
    PARTIAL_PREFIX,
    read_json,
    verify_artifact,
    write_json_atomically,
)
from models.errors import DataDirError, ModelIntegrityError, ModelNotFound

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
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.models_dir = self.data_dir / "models"

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
        """Make ``model_id`` active, after checking its files against their manifest."""
        verify_artifact(self.path_of(model_id))
        write_json_atomically(self.models_dir / ACTIVE_FILE, {"id": model_id})

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

