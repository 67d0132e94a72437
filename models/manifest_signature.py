"""Signed manifests: who vouches for a model (or an escalation policy) on disk.

``MANIFEST.json`` lists the SHA-256 of every file, but anyone who can change the weights can
recompute it. So beside it, ``MANIFEST.sig.json`` holds an Ed25519 signature over a short
statement naming what is signed (the artifact's subject: the model id, or model id and policy
id), the SHA-256 of ``MANIFEST.json``'s exact bytes and who signed when: changing a file and
recomputing the manifest changes that hash, and the old signature no longer verifies.

This layer does not know whose keys to trust (that is the application's: the installation
key, ``app.casework.model_trust``); callers hand a ``ManifestTrust`` in, and without one
nothing is checked. Only ``cryptography``'s Ed25519 is imported; a check is one file read
and one verify (a few tenths of a millisecond).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Only the Ed25519 module: ``cryptography.hazmat.primitives.serialization`` would add its SSH
# parsers (~15 ms) to a cold start for nothing (``*_bytes_raw`` need no formats).
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.artifact import MANIFEST_FILE, SIGNATURE_FILE, write_json_atomically
from models.errors import ModelIntegrityError

STATEMENT = "casewise model manifest v1"
SIGNATURE_FORMAT = 1
POLICIES_DIR = "policies"  # where a model keeps its escalation policies (models.escalation)
EXPLAINERS_DIR = "explainers"  # and its amortized explainers (explainers.amortized_store)
# What to do about a model that is not vouched for here; every refusal ends with it.
REMEDY = ("Activate it as an admin to sign it on this installation "
          "(`python main.py models --activate ID`), or train it again.")


def model_subject(model_dir: Path) -> str:
    """What a model's signature names: its id, which is its directory's name."""
    return Path(model_dir).name


def policy_subject(model_id: str, policy_id: str) -> str:
    """What a policy's signature names: the model it belongs to and its own id, so a policy
    signed for one model cannot be passed off as another's."""
    return f"{model_id}/{POLICIES_DIR}/{policy_id}"


def explainer_subject(model_id: str, explainer_id: str) -> str:
    """What an amortized explainer's signature names: its model and its own id."""
    return f"{model_id}/{EXPLAINERS_DIR}/{explainer_id}"


# The fields of a signature record its signature covers, besides the statement's name.
SIGNED_FIELDS = ("subject", "manifest_sha256", "public_key", "fingerprint", "label", "signed_at")


def statement_bytes(record: dict) -> bytes:
    """The exact bytes signed: canonical JSON (sorted keys, no spaces, UTF-8) of the statement
    and every other field of the record but the signature, so no field can be edited."""
    statement = {"statement": STATEMENT, **{name: record.get(name) for name in SIGNED_FIELDS}}
    return json.dumps(statement, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def public_hex(public: Ed25519PublicKey) -> str:
    return public.public_bytes_raw().hex()


def fingerprint_of(public_key_hex: str) -> str:
    """SHA-256 of the raw public key, hex (as ``app.accounts.keys`` prints it)."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """The private key that vouches for artifacts written or activated here, and its name."""

    private: Ed25519PrivateKey
    label: str

    @property
    def public_key(self) -> str:
        return public_hex(self.private.public_key())

    def seal_key(self) -> bytes:
        """A secret for MACs over local caches, derived from (never equal to) the private key:
        whoever cannot read the key cannot forge a cache entry either."""
        raw = self.private.private_bytes_raw()
        return hmac.new(raw, b"casewise verified-hash cache v1", hashlib.sha256).digest()


def sign_manifest(directory: Path, subject: str, key: SigningKey) -> dict:
    """Sign ``directory``'s MANIFEST.json as ``subject``; writes and returns the signature."""
    digest = hashlib.sha256((Path(directory) / MANIFEST_FILE).read_bytes()).hexdigest()
    public = key.public_key
    record = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "ed25519",
        "statement": STATEMENT,
        "subject": subject,
        "manifest_sha256": digest,
        "public_key": public,
        "fingerprint": fingerprint_of(public),
        "label": key.label,
        "signed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    record["signature"] = key.private.sign(statement_bytes(record)).hex()
    write_json_atomically(Path(directory) / SIGNATURE_FILE, record)
    return record


@dataclass(frozen=True)
class ManifestTrust:
    """Whose signatures a load accepts (raw Ed25519 public keys, hex) and the key that signs
    what is written or activated here (None: this caller only reads)."""

    trusted_keys: frozenset[str]
    signer: SigningKey | None = None

    @classmethod
    def of(cls, trusted_keys: Iterable[str], signer: SigningKey | None = None) -> ManifestTrust:
        return cls(frozenset(k.lower() for k in trusted_keys), signer)

    def sign(self, directory: Path, subject: str) -> None:
        """Vouch for ``directory``'s manifest; nothing when this caller has no key."""
        if self.signer is not None:
            sign_manifest(directory, subject, self.signer)

    def check(self, directory: Path, subject: str, manifest: bytes) -> None:
        """Refuse (ModelIntegrityError) unless ``manifest`` (MANIFEST.json's bytes) carries a
        valid signature as ``subject`` by a trusted key."""
        record = _read_signature(Path(directory))
        public = record.get("public_key")
        if not isinstance(public, str) or public.lower() not in self.trusted_keys:
            raise ModelIntegrityError(
                f"{_what(directory)} is signed by a key this installation does not trust "
                f"({record.get('label') or 'unnamed'}, fingerprint "
                f"{str(record.get('fingerprint', '?'))[:16]}). {REMEDY}")
        # What is signed must be this directory's manifest, as this subject, by this key.
        facts = {"subject": subject, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                 "fingerprint": fingerprint_of(public)}
        matches = all(record.get(name) == value for name, value in facts.items())
        if not (matches and _valid(public, record.get("signature"), statement_bytes(record))):
            raise ModelIntegrityError(
                f"{_what(directory)} does not match its signature: its manifest or signature "
                f"was changed after it was signed. Do not use it. {REMEDY}")

    def seal_key(self) -> bytes | None:
        return self.signer.seal_key() if self.signer is not None else None


def _what(directory: Path) -> str:
    directory = Path(directory)
    if directory.parent.name == POLICIES_DIR:
        return f"The escalation policy {directory.name} of model {directory.parent.parent.name}"
    if directory.parent.name == EXPLAINERS_DIR:
        return (f"The amortized explainer {directory.name} of model "
                f"{directory.parent.parent.name}")
    return f"Model {directory.name}"


def _read_signature(directory: Path) -> dict:
    path = directory / SIGNATURE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"{_what(directory)} is not signed ({SIGNATURE_FILE} is missing), so nothing "
            f"shows who vouches for its files. {REMEDY}") from None
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(
            f"The signature of {_what(directory).lower()} ({path}) cannot be read ({exc}). "
            f"{REMEDY}") from exc
    if not isinstance(record, dict):
        raise ModelIntegrityError(f"The signature {path} is not a signature record. {REMEDY}")
    return record


def _valid(public_key_hex: str, signature_hex: object, data: bytes) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public.verify(bytes.fromhex(str(signature_hex)), data)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
