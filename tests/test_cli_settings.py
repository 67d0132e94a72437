"""The command line reads the window's settings (data folder, reviewer, LLM, α/δ), flags
override them, and the ``app.cli`` package has no import cycle between its command modules.

Commands run in-process (``app.cli.main``) with ``CASEWISE_HOME`` pointing at an empty
folder: the settings file under it moves the data folder to the trained ``home``, so a command
that still used ``$CASEWISE_HOME`` as its data folder would find no model there."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path

import pytest

from app.settings import Settings, save_settings
from tests.helpers.cli import run_main
from tests.helpers.models import share_installation_key

TEXT = "great relief the medicine works"


@pytest.fixture()
def window_home(tmp_path, monkeypatch, installation_home) -> Path:
    """$CASEWISE_HOME: where the settings live; not the data folder (``home`` is). Not the
    ``casewise_home`` fixture, which is the same folder as ``home`` (``tmp_path / "home"``).
    It holds the installation key that signed ``home``'s model, as on the user's machine."""
    folder = share_installation_key(installation_home, tmp_path / "window")
    monkeypatch.setenv("CASEWISE_HOME", str(folder))
    return folder


def settings_for(home: Path, **changes) -> Settings:
    """Save (under $CASEWISE_HOME/config) settings whose data folder is ``home``."""
    settings = Settings(data_dir=str(home), **changes)
    save_settings(settings)
    return settings


def run(capsys, *argv: str) -> str:
    return run_main(list(argv), capsys).out


def cases_in(db: Path) -> list:
    from app.store import open_store

    with open_store(db) as store:
        return store.find_cases().items


def test_predict_and_models_use_the_data_folder_of_the_settings(home, window_home, capsys):
    settings_for(home)
    (model,) = json.loads(run(capsys, "models", "--json"))
    assert Path(model["path"]).is_relative_to(home)
    run(capsys, "predict", TEXT, "--json")
    assert len(cases_in(home / "casewise.db")) == 1
    assert not (window_home / "casewise.db").exists()


def test_review_takes_its_meaning_from_the_settings_and_the_signer_from_the_account(
        home, window_home, capsys, tmp_path):
    """The settings' reviewer name no longer signs anything: the account does."""
    from app.store import open_store
    from tests.helpers.accounts import PASSWORD, signer

    settings_for(home, reviewer="Dr. Ann Lee", signature_meaning="approved")
    run(capsys, "predict", TEXT)
    (case,) = json.loads(run(capsys, "history", "--json"))
    with open_store(home / "casewise.db") as store:
        signer(store, "ann", role="approver")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    signed = json.loads(run(capsys, "review", str(case["id"]), "--accept", "--json", "--user",
                            "ann", "--password-file", str(secret)))
    assert (signed["reviewer"], signed["meaning"]) == ("ann", "approved")
    assert signed["signature"]["full_name"] == "Ann Archer"
    again = json.loads(run(capsys, "review", str(case["id"]), "--defer", "--meaning",
                           "reviewed", "--json", "--user", "ann", "--password-file",
                           str(secret)))
    assert again["meaning"] == "reviewed"
    with open_store(home / "casewise.db") as store:  # the audit trail names the account
        actors = [e.actor for e in store.audit_events() if e.kind == "reviewed"]
    assert actors == ["ann", "ann"]


def test_ask_takes_its_llm_from_the_settings_and_flags_override_it(home, window_home, capsys):
    settings_for(home, llm_backend="openai", llm_model="m", llm_base_url="https://llm.example/v1")
    preview = json.loads(run(capsys, "ask", "Call Dr. Lee at 555-123-4567 about the rash",
                             "--preview", "--json", "--no-attributions"))
    assert preview["remote"] is True and preview["base_url"] == "https://llm.example/v1"
    assert "555-123-4567" not in preview["sent_text"]
    local = json.loads(run(capsys, "ask", "the rash", "--preview", "--json", "--no-attributions",
                           "--base-url", "http://127.0.0.1:9/v1"))
    assert local["remote"] is False and local["base_url"] == "http://127.0.0.1:9/v1"


def test_score_asks_the_llm_of_the_settings_as_the_window_does(home, window_home, tmp_path,
                                                                capsys):
    """``score --llm`` asks the LLM the settings name (the window's batch import asks that
    one too); it used to ask the embedded model whatever the settings said."""
    from tests.helpers.data import synthetic_rows, write_csv
    from tests.helpers.llm_server import serving

    rows = [{"text": r["text"]} for r in synthetic_rows(2, seed=21)]
    cases = write_csv(tmp_path / "cases.csv", rows)
    with serving() as server:
        settings_for(home, llm_backend="openai", llm_model="ok", llm_base_url=server.url)
        out = run(capsys, "score", str(cases), "--llm", "--no-explain", "--json",
                  "--db", str(tmp_path / "cases.db"))
        asked = len(server.requests)
    escalated = json.loads(out.splitlines()[-1])["escalated"]
    assert escalated > 0 and asked == escalated
    with_flag = tmp_path / "flag.db"
    with serving() as other:
        run(capsys, "score", str(cases), "--llm", "--no-explain", "--json", "--db",
            str(with_flag), "--base-url", other.url)
        assert len(other.requests) == escalated  # the flag overrides the setting


def test_calibrate_takes_alpha_and_delta_from_the_settings(home, window_home, capsys):
    settings_for(home, alpha=0.2, delta=0.05)
    fitted = json.loads(run(capsys, "calibrate", "--json", "--no-store"))
    assert (fitted["settings"]["alpha"], fitted["settings"]["delta"]) == (0.2, 0.05)
    flagged = json.loads(run(capsys, "calibrate", "--json", "--no-store", "--alpha", "0.3"))
    assert (flagged["settings"]["alpha"], flagged["settings"]["delta"]) == (0.3, 0.05)


def test_a_flag_overrides_only_the_setting_its_command_declares(window_home, tmp_path):
    from app.cli import build_parser
    from app.cli.common import cli_settings, data_path, with_settings

    settings_for(tmp_path / "data", reviewer="Ann", llm_model="from-settings")
    parse = build_parser().parse_args
    assert cli_settings(parse(["review", "1", "--accept", "--meaning", "approved"])
                        ).signature_meaning == "approved"
    # `history --reviewer` filters the list; it does not sign anything as that person
    assert cli_settings(parse(["history", "--reviewer", "Bob"])).reviewer == "Ann"
    # `predict --model` is the classifier, `ask --model` the LLM
    assert with_settings(parse(["predict", "x"])).model is None
    assert with_settings(parse(["ask", "x"])).model == "from-settings"
    assert with_settings(parse(["ask", "x", "--model", "mine"])).model == "mine"
    assert data_path(parse(["history"])) == tmp_path / "data"


def test_without_settings_the_data_folder_is_casewise_home(casewise_home):
    from app.cli import build_parser
    from app.cli.common import data_path

    assert data_path(build_parser().parse_args(["history"])) == casewise_home


# -- the package's shape ---------------------------------------------------------------------

def cli_modules() -> dict[str, Path]:
    import app.cli

    names = {f"app.cli.{info.name}" for info in pkgutil.iter_modules(app.cli.__path__)}
    return {name: Path(importlib.import_module(name).__file__) for name in sorted(names)}


def app_cli_imports(path: Path) -> set[str]:
    """The ``app.cli`` modules (or the package itself) a file imports, at the top or inside
    functions, written absolutely or relatively (the files are all in ``app/cli/``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # `from . import x`, `from .common import y`
                module = ".".join(["app", "cli", *module.split(".")] if module else ["app", "cli"])
            # `from app.cli import common` imports a module: count the names as modules too
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return {name for name in found
            if name == "app.cli" or (name.startswith("app.cli.") and name.count(".") == 2)}


def test_command_modules_import_only_the_shared_helpers():
    """Command modules import ``common`` (and ``auth``, who is acting), never each other;
    ``auth`` imports only ``common``, ``common`` only ``terminal`` (the escaped output), and
    ``terminal`` nothing of the CLI: no circles."""
    modules = cli_modules()
    helpers = {"app.cli.common", "app.cli.auth", "app.cli.terminal"}
    commands = {name: path for name, path in modules.items() if name not in helpers}
    assert len(commands) >= 5, f"found only {sorted(modules)}: looking in the wrong place?"
    assert app_cli_imports(modules["app.cli.terminal"]) == set()
    assert app_cli_imports(modules["app.cli.common"]) <= {"app.cli.terminal"}
    assert app_cli_imports(modules["app.cli.auth"]) <= {"app.cli.common"}
    offenders = {name: sorted(app_cli_imports(path) - helpers)
                 for name, path in commands.items()}
    assert {name: found for name, found in offenders.items() if found} == {}
