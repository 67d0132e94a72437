"""Ed25519 key pairs (``cryptography``), the private half encrypted under the password.

The key-encryption key is Argon2id (argon2-cffi's raw hash, the same parameters as the
password hash but its own salt) over the password; the private key's 32 raw bytes are sealed
with AES-256-GCM, whose tag makes a damaged or swapped ciphertext fail loudly rather than
yield a wrong key. The associated data binds the ciphertext to the public key it belongs to.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.accounts.errors import DamagedKey
from app.accounts.passwords import PARAMETERS

# SHA-256 of the raw public key, hex: one definition for users', installations' and models' keys.
from models.manifest_signature import fingerprint_of

SEALED_FORMAT = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class KeyPair:
    private: Ed25519PrivateKey
    public_hex: str  # the 32 raw public bytes, as stored in the history
    fingerprint: str


def public_hex(private: Ed25519PrivateKey) -> str:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def new_key_pair() -> KeyPair:
    private = Ed25519PrivateKey.generate()
    public = public_hex(private)
    return KeyPair(private, public, fingerprint_of(public))


def short_fingerprint(fingerprint: str) -> str:
    """The first 16 bytes in groups of four hex digits, for a line of text."""
    return " ".join(fingerprint[i:i + 4] for i in range(0, 32, 4))


def _kek(password: str, salt: bytes, params: dict[str, Any]) -> bytes:
    return hash_secret_raw(password.encode("utf-8"), salt, time_cost=params["time_cost"],
                           memory_cost=params["memory_kib"], parallelism=params["parallelism"],
                           hash_len=32, type=Type.ID)


def seal_private_key(private: Ed25519PrivateKey, password: str) -> dict[str, Any]:
    """The private key encrypted under the password, as JSON data for the history."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    salt, nonce = os.urandom(16), os.urandom(12)
    params = {key: PARAMETERS[key] for key in ("time_cost", "memory_kib", "parallelism")}
    sealed = AESGCM(_kek(password, salt, params)).encrypt(nonce, raw, _aad(private))
    return {"format": SEALED_FORMAT, "kdf": "argon2id", **params, "salt": _b64(salt),
            "nonce": _b64(nonce), "cipher": "aes-256-gcm", "sealed": _b64(sealed)}


def _aad(private_or_public: Ed25519PrivateKey | str) -> bytes:
    public = (private_or_public if isinstance(private_or_public, str)
              else public_hex(private_or_public))
    return f"casewise signing key {public}".encode("ascii")


def open_private_key(sealed: dict[str, Any], password: str,
                     public_key_hex: str) -> Ed25519PrivateKey:
    """Decrypt a sealed key; DamagedKey when it does not open or is not ``public_key_hex``'s
    (the password was checked against its own hash before, so a wrong one is not the cause)."""
    try:
        params = {key: int(sealed[key]) for key in ("time_cost", "memory_kib", "parallelism")}
        kek = _kek(password, _unb64(sealed["salt"]), params)
        raw = AESGCM(kek).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["sealed"]),
                                  _aad(public_key_hex))
        private = Ed25519PrivateKey.from_private_bytes(raw)
    except (KeyError, TypeError, ValueError, InvalidTag) as exc:
        raise DamagedKey("Your signing key in the case history is damaged and cannot be "
                         "opened; ask an admin to reset your password, which issues a new "
                         "key (your past signatures stay verifiable).") from exc
    if public_hex(private) != public_key_hex:
        raise DamagedKey("Your stored signing key does not match your public key; ask an "
                         "admin to reset your password, which issues a new key.")
    return private


def signature_valid(public_key_hex: str, signature_hex: str, data: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
