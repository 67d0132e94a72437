"""Verified SHA-256 digests are reused only while a file's state is unchanged."""

import json
import os

import pytest

from models import artifact
from models.artifact import (
    HASH_CACHE_FILE,
    MANIFEST_FILE,
    VerifiedHashes,
    manifest_of,
    verify_artifact,
    write_artifact,
)
from models.errors import ModelIntegrityError


@pytest.fixture()
def model_dir(tmp_path):
    def fill(directory):
        (directory / "weights.bin").write_bytes(b"w" * 100_000)
        (directory / "config.json").write_text('{"a": 1}\n')

    return write_artifact(tmp_path / "models", fill, lambda _: "m1")


@pytest.fixture()
def hashed(monkeypatch):
    """Counts the files actually hashed; files count as settled at once."""
    monkeypatch.setattr(VerifiedHashes, "SETTLE_NS", 0)
    names = []
    real = artifact.sha256_file

    def counting(path):
        names.append(path.name)
        return real(path)

    monkeypatch.setattr(artifact, "sha256_file", counting)
    return names


def test_unchanged_files_are_not_hashed_again(model_dir, hashed):
    verify_artifact(model_dir)
    assert sorted(hashed) == ["config.json", "weights.bin"]
    assert (model_dir / HASH_CACHE_FILE).is_file()
    hashed.clear()
    verify_artifact(model_dir)
    assert hashed == []


def test_a_same_size_edit_with_the_old_mtime_is_hashed_and_refused(model_dir, hashed):
    verify_artifact(model_dir)
    weights = model_dir / "weights.bin"
    before = weights.stat()
    weights.write_bytes(b"x" + b"w" * 99_999)
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide the edit's mtime
    assert weights.stat().st_size == before.st_size
    hashed.clear()
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 of weights\.bin"):
        verify_artifact(model_dir)
    assert hashed == ["weights.bin"]


def test_an_appended_file_is_refused(model_dir, hashed):
    verify_artifact(model_dir)
    with open(model_dir / "config.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(ModelIntegrityError, match=r"config\.json"):
        verify_artifact(model_dir)


def test_a_replaced_file_is_hashed_again(model_dir, hashed):
    verify_artifact(model_dir)
    weights = model_dir / "weights.bin"
    copy = model_dir / "copy.tmp"
    copy.write_bytes(weights.read_bytes())
    os.replace(copy, weights)  # same content, new inode: hashed again, still valid
    hashed.clear()
    verify_artifact(model_dir)
    assert hashed == ["weights.bin"]


def test_without_the_cache_every_file_is_hashed(model_dir, hashed):
    verify_artifact(model_dir)
    hashed.clear()
    verify_artifact(model_dir, use_cache=False)
    assert sorted(hashed) == ["config.json", "weights.bin"]


def test_a_damaged_or_unwritable_record_only_costs_hashing(model_dir, hashed, monkeypatch):
    (model_dir / HASH_CACHE_FILE).write_text("{not json")
    verify_artifact(model_dir)
    assert len(hashed) == 2
    (model_dir / HASH_CACHE_FILE).unlink()

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(artifact, "write_text_atomically", refuse)
    verify_artifact(model_dir)
    assert not (model_dir / HASH_CACHE_FILE).exists()


def test_a_claimed_digest_for_another_state_is_not_believed(model_dir, hashed):
    (model_dir / HASH_CACHE_FILE).write_text(json.dumps(
        {"weights.bin": {"state": [1, 2, 3, 4, 5], "sha256": "0" * 64}}))
    verify_artifact(model_dir)
    assert "weights.bin" in hashed


def test_freshly_written_files_are_not_recorded(model_dir):
    verify_artifact(model_dir)  # just written: within the settle time
    assert not (model_dir / HASH_CACHE_FILE).exists()


def test_the_record_is_not_part_of_the_manifest(model_dir, hashed):
    verify_artifact(model_dir)
    assert HASH_CACHE_FILE not in manifest_of(model_dir)
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())["sha256"]
    assert manifest == manifest_of(model_dir)
