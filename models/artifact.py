"""A trained model on disk: one directory, written atomically, checked by SHA-256 on load.

Files are written into ``.partial-*`` beside the final place and renamed in one step, so an
interrupted run leaves no directory that looks like a model. The manifest is signed inside
the scratch directory (``sign``), so a directory that looks like a model is already signed;
a load given a ``ManifestTrust`` refuses an unsigned one (``models.manifest_signature``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import ModelIntegrityError

if TYPE_CHECKING:
    from models.manifest_signature import ManifestTrust

ARTIFACT_FORMAT = 1
MANIFEST_FILE = "MANIFEST.json"
META_FILE = "casewise.json"
PARTIAL_PREFIX = ".partial-"
# The digests of an artifact's files as last verified, by file state (VerifiedHashes).
HASH_CACHE_FILE = ".verified-sha256.json"
# Who vouches for MANIFEST.json (models.manifest_signature); like the manifest, not listed in it.
SIGNATURE_FILE = "MANIFEST.sig.json"
# An escalation policy's kept fit (models.escalation): a cache, rewritten after a library
# upgrade, so no manifest may list it (the policy inside a model's directory included).
FITTED_FILE = ".fitted.json"
# Never listed in a manifest, at any depth; and skipped if an older manifest lists them.
UNLISTED = (MANIFEST_FILE, HASH_CACHE_FILE, SIGNATURE_FILE, FITTED_FILE)


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
        if path.is_file() and path.name not in UNLISTED
    }


def write_artifact(
    models_dir: Path, fill: Callable[[Path], None], name_for: Callable[[Path], str],
    sign: Callable[[Path, str], None] | None = None,
) -> Path:
    """Let ``fill`` write files into a scratch directory, add the manifest, then publish it.

    ``name_for`` picks the final directory name once the files exist (it may hash them);
    ``sign(scratch, name)`` then signs the manifest before the directory is published.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=models_dir))
    try:
        fill(scratch)
        write_json(scratch / MANIFEST_FILE, {"format": ARTIFACT_FORMAT,
                                             "sha256": manifest_of(scratch)})
        name = name_for(scratch)
        if sign is not None:
            sign(scratch, name)
        final = models_dir / name
        os.replace(scratch, final)
        return final
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def verify_artifact(directory: Path, use_cache: bool = True, trust: ManifestTrust | None = None,
                    subject: str | None = None) -> dict[str, str]:
    """Check every file against the manifest; name the first problem found.

    With ``trust``, the manifest must first carry a valid signature as ``subject`` (default:
    the directory's name) by one of its keys. Without it (library use, tests of this layer)
    the signature is not looked at: every application path passes one (``app.casework``).
    With ``use_cache``, a file whose size, times, inode and device are those it had when it
    last matched (``HASH_CACHE_FILE``) is not hashed again (see ``VerifiedHashes``).
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelIntegrityError(
            f"{directory} has no {MANIFEST_FILE}: it is not a complete Casewise model. "
            "Train it again, or activate another model (`python main.py models`)."
        )
    manifest = manifest_path.read_bytes()
    if trust is not None:  # before any hashing: an unsigned model is refused at once
        trust.check(directory, subject or directory.name, manifest)
    try:
        expected = json.loads(manifest)["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{manifest_path} is unreadable: {exc}") from exc
    seal = trust.seal_key() if trust is not None else None
    verified = VerifiedHashes(directory, seal) if use_cache else None
    for name, digest in expected.items():
        if name.rsplit("/", 1)[-1] in UNLISTED:
            continue  # a cache an older model listed; it is checked where it is read
        path = directory / name
        if not path.is_file():
            raise ModelIntegrityError(
                f"Model {directory.name} is incomplete: {name} is missing. "
                "Train the model again or activate another one."
            )
        if digest != (verified.sha256(name) if verified else sha256_file(path)):
            raise ModelIntegrityError(
                f"Model {directory.name} was changed after it was written: the SHA-256 of {name} "
                "does not match its manifest. Do not use it; train again or activate another model."
            )
    if verified:
        verified.save()
    return expected


def file_state(path: Path) -> list[int]:
    """What changes whenever a file's content is written: size, modification and status-change
    times (ns), inode and device. Restoring the modification time after an edit (``touch -d``)
    still moves the status-change time, which only the system clock sets."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class VerifiedHashes:
    """The SHA-256 of each file of an artifact as last hashed, keyed by the file's state.

    Kept in ``HASH_CACHE_FILE`` inside the artifact (the manifest does not list it, so it is
    never checked itself): a file is hashed again as soon as its state differs (any write, a
    copy, a restore), and otherwise its digest is taken from there, so loading a model does not
    read its weights twice. A file changed less than ``SETTLE_NS`` ago is not recorded, since
    a coarse file-system clock could give a further write within the same tick the same times.
    The record is a convenience: if it cannot be read or written, files are simply hashed.

    With a ``seal`` key (what the application passes, derived from its signing key) the record
    carries an HMAC and is believed only if it verifies: otherwise whoever can write the model
    could change the weights and record their new state beside the old digest, and neither
    the manifest nor its signature would be checked against the new bytes.
    """

    SETTLE_NS = 2_000_000_000

    def __init__(self, directory: Path, seal: bytes | None = None) -> None:
        self.directory = directory
        self.path = directory / HASH_CACHE_FILE
        self.seal = seal
        self.known = self._read()
        self.changed = False

    def _read(self) -> dict[str, dict]:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            files = record["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        if not isinstance(files, dict):
            return {}
        if self.seal is not None and not hmac.compare_digest(str(record.get("mac")),
                                                             self._mac(files)):
            return {}  # not written by a holder of the key: hash every file again
        return files

    def _mac(self, files: dict) -> str:
        data = json.dumps(files, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(self.seal or b"", data, hashlib.sha256).hexdigest()

    def sha256(self, name: str) -> str:
        path = self.directory / name
        state = file_state(path)
        entry = self.known.get(name)
        if isinstance(entry, dict) and entry.get("state") == state and "sha256" in entry:
            return entry["sha256"]
        digest = sha256_file(path)
        settled = time.time_ns() - max(state[1], state[2]) > self.SETTLE_NS
        if settled and file_state(path) == state:  # not written to while it was read
            self.known[name] = {"state": state, "sha256": digest}
            self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        record = {"files": self.known, "mac": self._mac(self.known) if self.seal else None}
        with contextlib.suppress(OSError):  # a read-only model directory: hash next time
            write_text_atomically(self.path, json.dumps(record, indent=1) + "\n", mode=0o644)
        self.changed = False


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"{path} cannot be read: {exc}") from exc


def remove_partials(models_dir: Path) -> None:
    """Clear scratch directories left by a run that was killed before it could clean up."""
    for stale in models_dir.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
