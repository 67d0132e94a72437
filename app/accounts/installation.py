"""This installation's signing key: it signs checkpoints of the audit chain (when the app
closes, before an export, every N events) and the manifests of the models trained or
activated here, with no person at the keyboard.

It is an Ed25519 key in a file readable by the owner only (0600) in the configuration folder,
never inside the case history, like an SSH key without a passphrase: it protects the chain
against anyone who can write the history but cannot read this file (a shared or copied
database, a backup); whoever can read the file can sign as the installation. The public key
is registered in each history it signs, so the signatures verify on any machine.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from app.accounts.errors import AccountError
from app.accounts.keys import fingerprint_of, public_hex
from app.accounts.statements import Signatory
from app.paths import config_dir

KEY_FILE = "installation-key.json"


@dataclass(frozen=True)
class InstallationKey:
    private: Ed25519PrivateKey
    public_key: str
    fingerprint: str
    label: str

    def signer(self, key_id: int) -> InstallationSigner:
        return InstallationSigner(self, key_id)


@dataclass(frozen=True)
class InstallationSigner:
    key: InstallationKey
    key_id: int

    @property
    def signatory(self) -> Signatory:
        return Signatory(0, "installation", self.key.label, "installation", self.key_id,
                         self.key.fingerprint)

    def sign(self, data: bytes) -> str:
        return self.key.private.sign(data).hex()


def key_path(folder: Path | None = None) -> Path:
    return (folder or config_dir()) / KEY_FILE


def installation_key(folder: Path | None = None) -> InstallationKey:
    """The key in ``folder`` (default: the configuration folder), made on first use."""
    path = key_path(folder)
    if not path.exists():
        _create(path)
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)  # someone loosened it; the key must stay the owner's
        data = json.loads(path.read_text(encoding="utf-8"))
        private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["private_key"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AccountError(f"This installation's signing key {path} cannot be read ({exc}). "
                           "Restore it from a backup of the configuration folder; removing "
                           "it makes a new key (checkpoints signed by the old one still "
                           "verify).") from exc
    public = public_hex(private)
    return InstallationKey(private, public, fingerprint_of(public), data.get("label") or
                           f"installation {public[:8]}")


def _create(path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    label = f"installation on {socket.gethostname() or 'this machine'}"
    content = json.dumps({"format": 1, "algorithm": "ed25519", "label": label,
                          "private_key": raw.hex()}, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if another process made the key first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
