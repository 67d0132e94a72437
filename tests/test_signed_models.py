"""Signed models (issue 13, item 8): a model's manifest is signed by the installation key that
trained or activated it, and every application load refuses a model or policy whose
signature is missing, wrong, or by a key this installation does not trust.

Real files, real Ed25519 keys (``app.accounts.installation``); nothing is mocked."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from app.accounts.installation import installation_key
from app.casework import activate_model, load_classifier, load_workbench, model_registry
from models.artifact import (
    HASH_CACHE_FILE,
    MANIFEST_FILE,
    SIGNATURE_FILE,
    manifest_of,
    sha256_file,
    write_json,
)
from models.errors import ModelIntegrityError
from models.escalation import policy_dirs
from models.manifest_signature import SigningKey, sign_manifest
from tests.helpers.cli import run_cli
from tests.helpers.data import PROJECT_ROOT

REMEDY = "activate it as an admin to sign it on this installation"


@pytest.fixture()
def model(home, casewise_home) -> Path:
    """The directory of the active model of a writable home that is also CASEWISE_HOME, so
    its installation key (the session's) is the trusted one."""
    return model_registry(home).active_path()


def recompute_manifest(directory: Path) -> None:
    """What an attacker who can write the folder does after changing a file."""
    write_json(directory / MANIFEST_FILE, {"format": 1, "sha256": manifest_of(directory)})


def change_weights(model_dir: Path) -> None:
    with open(model_dir / "model.safetensors", "r+b") as handle:
        handle.seek(-16, os.SEEK_END)
        handle.write(b"\x01" * 16)


def forge_hash_cache(model_dir: Path) -> None:
    """Record the weights' present state beside the digest the manifest expects."""
    expected = json.loads((model_dir / MANIFEST_FILE).read_text())["sha256"]["model.safetensors"]
    st = (model_dir / "model.safetensors").stat()
    state = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    write_json(model_dir / HASH_CACHE_FILE,
               {"files": {"model.safetensors": {"state": state, "sha256": expected}},
                "mac": "0" * 64})


def refused(home: Path, match: str) -> str:
    with pytest.raises(ModelIntegrityError, match=match) as caught:
        load_workbench(home)
    message = str(caught.value)
    assert REMEDY in message.lower() and "train it again" in message
    return message


def test_a_trained_model_loads_and_is_signed_by_this_installation(home, model):
    bench = load_workbench(home)
    assert bench.policy is not None
    signature = json.loads((model / SIGNATURE_FILE).read_text())
    key = installation_key()
    assert signature["public_key"] == key.public_key
    assert signature["fingerprint"] == key.fingerprint and signature["label"] == key.label
    assert signature["subject"] == model.name
    assert signature["manifest_sha256"] == sha256_file(model / MANIFEST_FILE)
    assert SIGNATURE_FILE not in manifest_of(model)
    (policy,) = policy_dirs(model)
    assert json.loads((policy / SIGNATURE_FILE).read_text())["subject"] == \
        f"{model.name}/policies/{policy.name}"


def test_changed_weights_with_a_recomputed_manifest_are_refused(home, model):
    change_weights(model)
    recompute_manifest(model)
    message = refused(home, "does not match its signature")
    assert model.name in message


def test_a_deleted_signature_is_refused(home, model):
    (model / SIGNATURE_FILE).unlink()
    refused(home, "is not signed")


def _flip_last_byte(hex_text: str) -> str:
    return hex_text[:-2] + f"{int(hex_text[-2:], 16) ^ 1:02x}"


@pytest.mark.parametrize("field,value", [
    ("signature", None), ("subject", "another-model"), ("manifest_sha256", "0" * 64),
    ("label", "the admin's laptop"), ("signed_at", "2020-01-01T00:00:00+00:00"),
    ("fingerprint", "0" * 64)])
def test_an_edited_signature_is_refused(home, model, field, value):
    path = model / SIGNATURE_FILE
    record = json.loads(path.read_text())
    record[field] = _flip_last_byte(record[field]) if value is None else value
    path.write_text(json.dumps(record))
    refused(home, "does not match its signature")


def test_an_unreadable_signature_is_refused(home, model):
    (model / SIGNATURE_FILE).write_text("{")
    refused(home, "cannot be read")


def test_a_model_signed_by_another_installation_is_refused_until_activated_here(
        home, model, tmp_path):
    other = installation_key(tmp_path / "elsewhere")
    sign_manifest(model, model.name, SigningKey(other.private, other.label))
    message = refused(home, "signed by a key this installation does not trust")
    assert other.fingerprint[:16] in message
    activate_model(home, model.name)  # an admin vouches for it here
    assert load_workbench(home).model_id == model.name
    assert json.loads((model / SIGNATURE_FILE).read_text())["public_key"] == \
        installation_key().public_key


def test_a_model_from_before_signing_is_refused_and_activation_signs_it(home, model):
    for directory in (model, *policy_dirs(model)):
        (directory / SIGNATURE_FILE).unlink()  # as every model trained before this change
    refused(home, "is not signed")
    activate_model(home, model.name)
    bench = load_workbench(home)
    assert bench.policy is not None


def test_activation_refuses_a_model_whose_files_do_not_match_its_manifest(home, model):
    change_weights(model)
    forge_hash_cache(model)  # activation hashes every file afresh: no cache is believed
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 of model\.safetensors"):
        activate_model(home, model.name)


def test_a_refitted_policy_is_signed_and_a_changed_one_refused(home, model):
    """A refit's policy is not in the model's manifest: its own signature protects it."""
    from app.policy_refit import refit_policy

    refit = refit_policy(load_workbench(home), alpha=0.2, delta=0.1)
    assert load_workbench(home).policy.policy_id == refit.policy_id
    policy = policy_dirs(model)[-1]
    record = json.loads((policy / "policy.json").read_text())
    record["settings"]["always_review"] = []
    record["source"] = "trust me"
    write_json(policy / "policy.json", record)
    recompute_manifest(policy)
    with pytest.raises(ModelIntegrityError,
                       match=r"escalation policy .* does not match its signature"):
        load_workbench(home)
    load_classifier(home)  # the model itself is still fine


def test_a_forged_hash_cache_does_not_hide_changed_weights(home, model):
    """Whoever changes the weights and records their new state beside the old digest in the
    hash cache is still caught: the cache is believed only with the installation's seal."""
    change_weights(model)
    forge_hash_cache(model)
    with pytest.raises(ModelIntegrityError, match=r"SHA-256 of model\.safetensors"):
        load_classifier(home)


def test_a_forged_kept_fit_is_not_believed(home, model):
    """The policy's kept fit (no manifest lists it) is reused only with the installation's
    seal; a changed quantile is refitted from the signed data instead."""
    load_workbench(home)
    (policy,) = policy_dirs(model)
    kept_file = policy / ".fitted.json"
    kept = json.loads(kept_file.read_text())
    original = kept["sets"]["quantile"]
    kept["sets"]["quantile"] = 0.999
    kept_file.write_text(json.dumps(kept))
    bench = load_workbench(home)
    assert bench.policy.sets.quantile == pytest.approx(original)
    assert json.loads(kept_file.read_text())["sets"]["quantile"] == pytest.approx(original)


def test_the_cli_refuses_a_tampered_model_and_activation_signs_it(home, model):
    """A model no history has used: an admin's activation vouches for what it is now."""
    change_weights(model)
    recompute_manifest(model)
    result = run_cli(home, "predict", "great relief", "--no-store", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not match its signature" in result.stderr and REMEDY in result.stderr.lower()
    run_cli(home, "models", "--activate", model.name, "--no-store")  # the admin vouches
    assert run_cli(home, "predict", "great relief", "--no-store").stdout.split()[0] in \
        {"negative", "neutral", "positive"}


def test_activation_refuses_weights_other_than_those_the_history_recorded(home, model):
    """Changed weights with a recomputed manifest (and the signature deleted, so it looks
    like a model from before signing): the case history recorded the weights this model id
    decided cases with, so no activation vouches for the new ones, in the CLI or the app."""
    run_cli(home, "predict", "great relief")  # the history now knows the model's weights
    change_weights(model)
    recompute_manifest(model)
    (model / SIGNATURE_FILE).unlink()
    result = run_cli(home, "models", "--activate", model.name, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not the ones the case history recorded" in result.stderr
    assert not (model / SIGNATURE_FILE).exists()  # nothing was signed
    result = run_cli(home, "models", "--activate", model.name, "--no-store", check=False)
    assert result.returncode == 2 and "case history recorded" in result.stderr
    with pytest.raises(ModelIntegrityError, match="case history recorded"):
        activate_model(home, model.name, ["0" * 64])


# -- the check cannot be forgotten: app code reaches models only through app.casework -------

LOADERS = {"load_policy", "save_policy", "verify_artifact", "ModelRegistry"}


def _direct_uses(path: Path) -> list[str]:
    """Calls in ``path`` that would load or write a model without the installation's trust:
    ``ModelRegistry(...)``, ``Classifier.load(...)``, ``load_policy``/``verify_artifact``
    without ``trust=``, ``save_policy`` without its third argument."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        trusted = any(k.arg == "trust" for k in node.keywords)
        if name == "load" and isinstance(func, ast.Attribute) and \
                getattr(func.value, "id", "") == "Classifier":
            found.append(f"{path.name}:{node.lineno} Classifier.load")
        elif name == "save_policy" and len(node.args) < 3 and not trusted:
            found.append(f"{path.name}:{node.lineno} save_policy")
        elif name in LOADERS - {"save_policy"} and not trusted:
            found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_app_code_loads_models_only_through_the_trusted_registry():
    app = PROJECT_ROOT / "app"
    found = [use for path in sorted(app.rglob("*.py")) if path != app / "casework.py"
             for use in _direct_uses(path)]
    assert found == [], ("build registries with app.casework.model_registry and load with "
                         f"its classifier/policy, so signatures are checked: {found}")


def test_the_window_refuses_weights_other_than_those_the_history_recorded(qtbot,
                                                                        ui_context_home):
    """Models → Activate in the window holds a model to the weights its history recorded, as
    the CLI does (the scored history recorded the tiny model's weights)."""
    from app.ui.models_dialog import ModelsDialog
    from tests.helpers.ui_accounts import sign_in

    context = ui_context_home
    model = model_registry(context.data_dir).active_path()
    change_weights(model)
    recompute_manifest(model)
    (model / SIGNATURE_FILE).unlink()
    sign_in(qtbot, context, "admin")
    manager = ModelsDialog(context)
    qtbot.addWidget(manager)
    qtbot.waitUntil(lambda: manager.table.rowCount() == 1, timeout=30000)
    manager.select(model.name)
    manager.activate_selected()
    qtbot.waitUntil(lambda: "case history recorded" in manager.status.text(), timeout=30000)
    assert not (model / SIGNATURE_FILE).exists()  # nothing was signed
