"""The model learns from its reviewers (issue 17, parts 1-3): reviewed cases from a real
history, the held-out draw, and `train --from-history` end to end with the tiny model: a
challenger trained on the reviewed cases, compared with the active model on cases neither saw,
put to work only when not worse or when an admin forces it, every step in the audit trail."""

from __future__ import annotations

import json

import pytest

from app.learning import MIN_HELD_OUT, split_reviewed
from app.store import open_store
from models.errors import DataError
from tests.helpers.accounts import PASSWORD, signer
from tests.helpers.cli import run_cli
from tests.helpers.data import synthetic_rows
from tests.store_helpers import prediction

MODEL_LABELS = ("negative", "neutral", "positive")


def review_all(store, rows, meaning: str = "reviewed") -> list[int]:
    """File each row as a case the model called "negative"; the reviewer signs its true label
    (an accept when it is "negative", else an override)."""
    ann = signer(store, "ann")
    ids = []
    for row in rows:
        case_id = store.add_case(row["text"], prediction=prediction("negative")).case_id
        if row["label"] == "negative":
            store.add_review(case_id, ann, "accept", meaning=meaning)
        else:
            store.add_review(case_id, ann, "override", label=row["label"],
                             reason="the text says otherwise", meaning=meaning)
        ids.append(case_id)
    return ids


def synthetic(n_per_class: int, seed: int = 4) -> list[dict]:
    names = dict(zip(sorted({r["label"] for r in synthetic_rows(1)}), MODEL_LABELS,
                     strict=True))
    return [{**r, "label": names[r["label"]]} for r in synthetic_rows(n_per_class, seed)]


def test_the_latest_signed_review_labels_a_case_and_deferrals_are_left_out(store):
    rows = synthetic(2)
    ids = review_all(store, rows)
    ann = signer(store, "ann")
    store.add_review(ids[0], ann, "defer")  # its latest word: no label
    store.add_review(ids[1], ann, "override", label="positive", reason="second look")
    reviewed = {c.case_id: c for c in store.reviewed_cases()}
    assert ids[0] not in reviewed and reviewed[ids[1]].label == "positive"
    assert reviewed[ids[2]].label == rows[2]["label"]
    assert len(reviewed) == len(rows) - 1
    assert store.reviewed_cases(approved_only=True) == []


def test_too_few_reviewed_cases_say_how_many_more_are_needed(store):
    review_all(store, synthetic(5))
    with pytest.raises(DataError, match=r"15 reviewed cases .* at least 68 are needed "
                                        r"\(53 more\) for 3 labels"):
        split_reviewed(store.reviewed_cases())


def test_the_original_training_rows_count_towards_training_not_towards_the_comparison(store):
    """With --with-original only the held-out comparison must come from reviews: 25 reviewed
    cases and the model's own 60 rows are enough; 15 are not (20 are held out at least)."""
    original = [(r["text"], r["label"]) for r in synthetic(20, seed=3)]
    review_all(store, synthetic(5))
    with pytest.raises(DataError, match=r"at least 20 are needed \(5 more\) for 3 labels, "
                                        r"with the 60 original training rows"):
        split_reviewed(store.reviewed_cases(), original=original)
    review_all(store, synthetic(4, seed=11))
    split = split_reviewed(store.reviewed_cases(), original=original)
    assert len(split.held_out) == 20 and len(split.train) == 7


def test_reviews_of_one_label_cannot_train_a_classifier(store):
    review_all(store, [r for r in synthetic(30) if r["label"] == "positive"])
    with pytest.raises(DataError, match="all carry the label 'positive'"):
        split_reviewed(store.reviewed_cases())


def test_the_held_out_draw_is_random_recorded_and_never_trained_on(store, tmp_path):
    from app.learning import write_training_file

    review_all(store, synthetic(30))
    cases = store.reviewed_cases()
    split = split_reviewed(cases, 0.25, seed=5)
    assert len(split.held_out) == max(MIN_HELD_OUT, round(0.25 * len(cases)))
    assert split_reviewed(cases, 0.25, seed=5) == split  # the seed is the record
    assert split_reviewed(cases, 0.25, seed=6).held_out != split.held_out
    record = split.record()
    assert sorted(record["held_out_case_ids"] + record["train_case_ids"]) == \
        sorted(c.case_id for c in cases)
    held = {c.text for c in split.held_out}
    extra = [(next(iter(held)), "negative"), ("an original training text", "neutral")]
    written = write_training_file(split, tmp_path / "t.jsonl", extra)
    texts = [json.loads(line)["text"] for line in written.read_text().splitlines()]
    assert not held & set(texts) and "an original training text" in texts


def test_train_from_history_compares_and_records_the_comparison(home, trained_home, tmp_path):
    from models.registry import ModelRegistry

    base = ModelRegistry(trained_home).active_path()  # the tiny model: it learns in 2 epochs
    champion = ModelRegistry(home).active_id()
    with open_store(home / "casewise.db") as store:
        review_all(store, synthetic(30))
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = run_cli(home, "train", "--from-history", "--epochs", "2", "--max-length", "32",
                     "--recipe", "fine-tune", "--base-model", str(base), "--user", "admin",
                     "--password-file", str(secret), check=False)
    assert result.returncode == 0, result.stderr
    assert "held-out reviewed cases" in result.stdout
    with open_store(home / "casewise.db") as store:
        (compared,) = store.audit_events(kind="models_compared")
        activated = store.audit_events(kind="model_activated")
        assert store.verify_chain().ok
    payload = compared.payload
    assert payload["champion"] == champion and payload["challenger"] != champion
    assert len(payload["held_out"]["held_out_case_ids"]) == 22
    assert "promote when" in payload["comparison"]["rule"]
    active = ModelRegistry(home).active_id()
    promoted = payload["comparison"]["promote"]
    assert (active == payload["challenger"]) == promoted
    assert bool(activated) == promoted
    assert compared.actor == "admin"


def test_a_forced_promotion_needs_an_admin_and_is_recorded_with_its_reason(home, tiny_base_dir,
                                                                           tmp_path):
    """A challenger from the untrained tiny BERT (one epoch leaves it at chance) is worse: the
    rule keeps the champion, and only an admin's stated reason puts it to work."""
    from models.registry import ModelRegistry

    base = tiny_base_dir
    with open_store(home / "casewise.db") as store:
        review_all(store, synthetic(30))
        signer(store, "rita", role="reviewer")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    common = ["train", "--from-history", "--epochs", "1", "--max-length", "32",
              "--recipe", "fine-tune",
              "--base-model", str(base), "--force-reason", "pilot on ward 4",
              "--password-file", str(secret)]
    refused = run_cli(home, *common, "--user", "rita", check=False)
    assert refused.returncode == 2 and "Only an admin may" in refused.stderr
    run_cli(home, *common, "--user", "admin")
    with open_store(home / "casewise.db") as store:
        (compared,) = store.audit_events(kind="models_compared")
        forced = store.audit_events(kind="promotion_forced")
    challenger = compared.payload["challenger"]
    assert not compared.payload["comparison"]["promote"]
    assert ModelRegistry(home).active_id() == challenger
    (event,) = forced
    assert event.payload == {"model_id": challenger, "reason": "pilot on ward 4",
                             "comparison_event": compared.id} and event.actor == "admin"


def test_the_window_trains_from_the_history_shows_the_comparison_and_promotes(
        qtbot, home, trained_home, tiny_base_dir, tmp_path):
    """The model manager's "Train from reviewed cases…": the same flow in the background,
    the comparison shown, and "Put it to work anyway…" with a reason (the untrained tiny
    BERT's challenger is worse), as the signed-in admin (a real AppContext, Qt offscreen)."""
    from app.settings import Settings
    from app.ui.context import AppContext
    from app.ui.models_dialog import ModelsDialog
    from models.registry import ModelRegistry
    from models.training import TrainingConfig
    from tests.helpers.ui_accounts import sign_in

    champion = ModelRegistry(home).active_id()
    with open_store(home / "casewise.db") as store:
        review_all(store, synthetic(30))
    context = AppContext(Settings(data_dir=str(home)), config_dir=home / "config")
    try:
        with qtbot.waitSignal(context.store_ready, timeout=20000):
            context.open_store(home / "casewise.db")
        with qtbot.waitSignal(context.workbench_changed, timeout=60000):
            context.load_workbench()
        sign_in(qtbot, context, "admin")
        manager = ModelsDialog(context)
        qtbot.addWidget(manager)
        dialog = manager.learn(config=TrainingConfig(max_epochs=1, max_length=32,
                                                          recipe="fine-tune"),
                               base_dir=tiny_base_dir)
        qtbot.waitUntil(lambda: dialog.challenge is not None, timeout=120000)
        assert "held-out reviewed cases" in dialog.stage.text()
        assert dialog.promote_button.isVisible()
        assert dialog.promote_button.text() == "Put it to work anyway…"
        challenger = dialog.challenge.challenger.id
        assert ModelRegistry(home).active_id() == champion  # nothing changes by itself
        dialog.promote("pilot on ward 4")
        qtbot.waitUntil(lambda: context.workbench is not None
                        and context.workbench.model_id == challenger, timeout=60000)
        context.runner.wait()
        with open_store(home / "casewise.db") as store:
            (compared,) = store.audit_events(kind="models_compared")
            (forced,) = store.audit_events(kind="promotion_forced")
            activated = store.audit_events(kind="model_activated")
        assert compared.payload["challenger"] == challenger
        assert forced.payload["reason"] == "pilot on ward 4"
        assert forced.payload["comparison_event"] == compared.id and forced.actor == "admin"
        assert activated[-1].payload["model_id"] == challenger
        # The card of the new model shows the comparison, and why it was put to work.
        from app.ui.models_dialog import ModelCardDialog, show_model_card_for

        show_model_card_for(context, challenger, manager)
        qtbot.waitUntil(lambda: any(d.comparisons for d in
                                    manager.findChildren(ModelCardDialog)), timeout=30000)
        card = next(d for d in manager.findChildren(ModelCardDialog) if d.comparisons)
        text = card.browser.toPlainText()
        assert "Champion and challenger" in text and "pilot on ward 4" in text
        assert champion in text
    finally:
        context.close()


def test_cases_the_champion_trained_on_are_never_held_out(store):
    from app.learning import split_reviewed

    review_all(store, synthetic(30))
    cases = store.reviewed_cases()
    used = frozenset(c.case_id for c in cases[:60])
    split = split_reviewed(cases, 0.25, seed=5, train_only=used)
    assert not {c.case_id for c in split.held_out} & used
    assert len(split.held_out) + len(split.train) == len(cases)
    with pytest.raises(DataError, match=r"Only 10 reviewed cases were not used .* 22 are "
                                        r"needed .* \(12 more"):
        split_reviewed(cases, 0.25, seed=5, train_only=frozenset(c.case_id for c in cases[:80]))


def test_the_window_asks_which_recipe_to_train_from_the_history_with(qtbot, home, monkeypatch):
    """"Train from reviewed cases…" offers the recipes (automatic first); the one picked is
    the challenger's; cancelling the choice trains nothing. (The modal choice is answered
    by replacing ``QInputDialog.getItem``: offscreen Qt has nobody to click it.)"""
    from PySide6.QtWidgets import QInputDialog

    from app.settings import Settings
    from app.ui import learning_dialog
    from app.ui.context import AppContext
    from app.ui.models_dialog import ModelsDialog
    from models.recipes import RECIPE_CHOICES

    context = AppContext(Settings(data_dir=str(home)), config_dir=home / "config")
    started = []
    from types import SimpleNamespace

    def start(_ctx, _parent, config=None, base_dir=None):  # no training: only the config
        started.append(config)
        return SimpleNamespace(task=SimpleNamespace(on_success=lambda _then: None))

    monkeypatch.setattr(learning_dialog, "start_learning", start)
    offered = []

    def answer(_parent, _title, _label, items, _current, _editable):
        offered.append(list(items))
        return items[2], True

    monkeypatch.setattr(QInputDialog, "getItem", answer)
    manager = ModelsDialog(context)
    qtbot.addWidget(manager)
    try:
        manager.learn()
        assert offered[0] == [description for _value, description in RECIPE_CHOICES]
        assert started[0].recipe == RECIPE_CHOICES[2][0]
        monkeypatch.setattr(QInputDialog, "getItem", lambda *args: ("", False))
        assert manager.learn() is None and len(started) == 1
    finally:
        context.runner.wait()
