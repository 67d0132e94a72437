"""A trained model on disk: one directory, written atomically, checked by SHA-256 on load.

Files are written into ``.partial-*`` beside the final place and renamed in one step, so an
interrupted run leaves no directory that looks like a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from models.errors import ModelIntegrityError

ARTIFACT_FORMAT = 1
MANIFEST_FILE = "MANIFEST.json"
META_FILE = "casewise.json"
PARTIAL_PREFIX = ".partial-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text_atomically(path: Path, content: str, mode: int | None = None) -> None:
    """Replace ``path`` in one step, so readers never see half a file (a crash leaves the
    old file or the new one). ``mode``: the new file's permissions (default: owner only)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomically(path: Path, data: object) -> None:
    """Replace ``path`` with ``data`` as JSON in one step (see ``write_text_atomically``)."""
    write_text_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def manifest_of(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def write_artifact(
    models_dir: Path, fill: Callable[[Path], None], name_for: Callable[[Path], str]
) -> Path:
    """Let ``fill`` write files into a scratch directory, add the manifest, then publish it.

    ``name_for`` picks the final directory name once the files exist (it may hash them).
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=models_dir))
    try:
        fill(scratch)
        write_json(scratch / MANIFEST_FILE, {"format": ARTIFACT_FORMAT,
                                             "sha256": manifest_of(scratch)})
        final = models_dir / name_for(scratch)
        os.replace(scratch, final)
        return final
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def verify_artifact(directory: Path) -> dict[str, str]:
    """Check every file against the manifest; name the first problem found."""
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelIntegrityError(
            f"{directory} has no {MANIFEST_FILE}: it is not a complete Casewise model. "
            "Train it again, or activate another model (`python main.py models`)."
        )
    try:
        expected = json.loads(manifest_path.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError) as exc:
        raise ModelIntegrityError(f"{manifest_path} is unreadable: {exc}") from exc
    for name, digest in expected.items():
        path = directory / name
        if not path.is_file():
            raise ModelIntegrityError(
                f"Model {directory.name} is incomplete: {name} is missing. "
                "Train the model again or activate another one."
            )
        if sha256_file(path) != digest:
            raise ModelIntegrityError(
                f"Model {directory.name} was changed after it was written: the SHA-256 of {name} "
                "does not match its manifest. Do not use it; train again or activate another model."
            )
    return expected


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{path} cannot be read: {exc}") from exc


def remove_partials(models_dir: Path) -> None:
    """Clear scratch directories left by a run that was killed before it could clean up."""
    for stale in models_dir.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
