"""The one settings model: defaults, round trip, upgrades, hand-edited files, the API key."""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import asdict, fields, replace

import pytest

from app.settings import (
    DEFAULTS,
    KEY_FILE,
    SETTINGS_FILE,
    SETTINGS_VERSION,
    Settings,
    api_key,
    from_dict,
    load_settings,
    save_api_key,
    save_settings,
)

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    for name in ("CASEWISE_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def write_raw(directory, raw) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = raw if isinstance(raw, str) else json.dumps(raw)
    (directory / SETTINGS_FILE).write_text(text, encoding="utf-8")


def test_defaults_are_valid_and_used_when_nothing_is_saved(tmp_path):
    assert Settings() == DEFAULTS
    assert DEFAULTS.version == SETTINGS_VERSION and DEFAULTS.problems() == []
    assert (DEFAULTS.alpha, DEFAULTS.delta, DEFAULTS.llm_backend, DEFAULTS.theme) == \
        (0.10, 0.10, "embedded", "system")
    assert load_settings(tmp_path) == DEFAULTS
    assert not (tmp_path / SETTINGS_FILE).exists()  # reading never writes


def test_every_field_survives_a_round_trip(tmp_path):
    changed = Settings(reviewer="Ann Lee", signature_meaning="approved", signing_idle_minutes=5,
                       blind_review=True, audit_share=0.1,
                       review_queue=False, explainer_after_training=False, alpha=0.05,
                       delta=0.2, llm_backend="openai",
                       llm_model="llama3.2", llm_base_url="http://localhost:11434/v1",
                       allow_remote=True, open_llm_on_escalation=False,
                       data_dir=str(tmp_path / "data"),
                       database_url="postgresql+psycopg://ann@db.example.org:5432/casewise"
                                    "?sslmode=verify-full", theme="dark")
    assert all(getattr(changed, f.name) != getattr(DEFAULTS, f.name)
               for f in fields(Settings) if f.name != "version")
    path = save_settings(changed, tmp_path)
    assert load_settings(tmp_path) == changed
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved == asdict(changed) and saved["version"] == SETTINGS_VERSION
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_a_version_1_file_is_upgraded(tmp_path):
    write_raw(tmp_path, {"version": 1, "auto_open_llm": False, "reviewer": "Ann"})
    loaded = load_settings(tmp_path)
    assert loaded.open_llm_on_escalation is False and loaded.reviewer == "Ann"
    assert loaded.version == SETTINGS_VERSION
    write_raw(tmp_path, {"auto_open_llm": False})  # no version at all: the first one
    assert load_settings(tmp_path).open_llm_on_escalation is False


def test_hand_edited_bad_values_fall_back_to_defaults_with_a_warning(tmp_path, caplog):
    write_raw(tmp_path, {"version": 2, "alpha": "high", "blind_review": "yes", "delta": 5,
                         "theme": "purple", "llm_backend": "gpt", "signature_meaning": "ok",
                         "reviewer": "Bob", "review_queue": False, "unknown_option": 1,
                         "alpha_typo": 0.2})
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        loaded = load_settings(tmp_path)
    assert loaded == replace(DEFAULTS, reviewer="Bob", review_queue=False)
    assert loaded.problems() == []
    warned = caplog.text
    for name in ("alpha", "blind_review", "delta", "theme", "llm_backend", "signature_meaning"):
        assert name in warned


def test_an_int_where_a_float_is_expected_is_accepted(tmp_path):
    write_raw(tmp_path, {"version": 2, "alpha": 0, "delta": 1})  # out of range: defaults
    assert (load_settings(tmp_path).alpha, load_settings(tmp_path).delta) == (0.1, 0.1)
    assert from_dict({"version": 2, "alpha": 0.2}).alpha == 0.2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "", '{"version": "two"}',
                                     '{"version": -3, "reviewer": "Cy"}'])
def test_an_unreadable_file_never_stops_the_app(tmp_path, caplog, content):
    write_raw(tmp_path, content)
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        loaded = load_settings(tmp_path)
    assert loaded.problems() == [] and loaded.version == SETTINGS_VERSION
    assert loaded.reviewer in ("", "Cy")


def test_cross_field_problems_are_reported_and_refused_on_save(tmp_path):
    incomplete = replace(DEFAULTS, llm_backend="openai")  # no URL, no model
    assert any("URL" in p for p in incomplete.problems())
    with pytest.raises(ValueError, match="URL"):
        save_settings(incomplete, tmp_path)
    assert not (tmp_path / SETTINGS_FILE).exists()
    with pytest.raises(ValueError):
        save_settings(replace(DEFAULTS, alpha=1.5), tmp_path)


def test_the_api_key_is_private_and_never_in_the_settings(tmp_path):
    save_settings(replace(DEFAULTS, llm_backend="openai", llm_model="m",
                          llm_base_url="https://example.org/v1"), tmp_path)
    save_api_key(f"  {KEY}\n", tmp_path)
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert api_key(tmp_path) == KEY
    assert KEY not in (tmp_path / SETTINGS_FILE).read_text(encoding="utf-8")
    assert "key" not in json.loads((tmp_path / SETTINGS_FILE).read_text(encoding="utf-8"))
    save_api_key("", tmp_path)
    assert not key_file.exists() and api_key(tmp_path) is None


def test_the_environment_key_wins(tmp_path, monkeypatch):
    save_api_key(KEY, tmp_path)
    monkeypatch.setenv("CASEWISE_LLM_API_KEY", "from-env")
    assert api_key(tmp_path) == "from-env"


def test_reviewer_name_and_data_path_have_defaults(tmp_path, monkeypatch):
    assert DEFAULTS.reviewer_name()  # the login name, never empty
    assert replace(DEFAULTS, reviewer="  Ann ").reviewer_name() == "Ann"
    monkeypatch.setenv("CASEWISE_HOME", str(tmp_path))
    assert DEFAULTS.data_path() == tmp_path
    assert replace(DEFAULTS, data_dir=str(tmp_path / "x")).data_path() == tmp_path / "x"


def test_the_signing_idle_limit_is_a_bounded_setting():
    from app.settings import from_dict

    assert from_dict({"version": 2}).signing_idle_minutes == 15
    assert from_dict({"version": 2, "signing_idle_minutes": 5}).signing_idle_minutes == 5
    assert from_dict({"version": 2, "signing_idle_minutes": 0}).signing_idle_minutes == 15
    assert from_dict({"version": 2, "signing_idle_minutes": "5"}).signing_idle_minutes == 15
