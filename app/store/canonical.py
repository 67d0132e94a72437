"""Canonical JSON and hashing: the one byte form every hash in the store is taken over.

Sorted keys, no spaces, UTF-8, and Python's spelling of non-finite floats (``Infinity``):
an escalation's distance threshold can be infinite when there are few calibration cases, and
the store must keep that value, not refuse the case.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.store.errors import InvalidRecord
from models.types import RecordError

GENESIS_HASH = "0" * 64  # the prev_hash of the first audit event


def _plain(value: Any) -> Any:
    """JSON's ``default``: numpy scalars and arrays (without importing numpy), datetimes."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)  # sets have no order; give them one so hashes repeat
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain)


def sha256_hex(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def hash_of(value: Any) -> str:
    return sha256_hex(canonical_json(value))


def as_plain_dict(obj: Any, what: str) -> dict[str, Any]:
    """A domain object (``to_dict()``) or mapping as plain JSON data, exactly as it is stored.

    Round-tripping through canonical JSON here means the hash taken now equals the hash
    recomputed later from the stored text (tuples become lists, numpy floats become floats).
    """
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    if not isinstance(data, Mapping):
        raise InvalidRecord(f"The {what} must be a mapping or have to_dict(), "
                            f"not {type(obj).__name__}.")
    try:
        return json.loads(canonical_json(dict(data)))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"The {what} cannot be stored as JSON: {exc}.") from exc


def record_data(obj: Any, kind: type, what: str) -> dict[str, Any]:
    """A domain record (``Prediction``, ``Attribution``, ...) as the JSON data stored for it.
    Only the type itself is accepted: a dict of the wrong shape must not reach the history.
    Nor may an object of the type built with fields of the wrong shape (dataclasses do not
    check): the stored data must read back with ``from_dict``, or the append-only history
    would keep a record nobody can open."""
    if not isinstance(obj, kind):
        raise InvalidRecord(f"The {what} must be a {kind.__name__}, not a "
                            f"{type(obj).__name__}; build one with "
                            f"{kind.__name__}.from_dict(...) first.")
    try:
        plain = obj.to_dict()
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise InvalidRecord(f"The {what} is not a well-formed {kind.__name__}: {exc}.") from exc
    data = as_plain_dict(plain, what)
    try:
        kind.from_dict(data)
    except RecordError as exc:
        raise InvalidRecord(f"The {what} would not read back as a {kind.__name__}, so it "
                            f"is not stored: {exc}") from exc
    return data


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds always written, so strings sort as times do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
