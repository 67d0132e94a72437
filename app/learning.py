"""The model learns from its reviewers: reviewed cases become the next model's training data,
and a new model is put to work only if it is not worse than the one at work.

Each case's latest *signed* review gives its label (an accepted case the model's label, an
overridden one the reviewer's; deferrals and unsigned reviews are left out). A share of those
cases, drawn at random with a recorded seed, is held out and never trained on: the active model
(the champion) and the new one (the challenger) both answer it, and ``models.model_comparison``
decides by its stated rule. The new model's own escalation policy is fitted on the calibration
split its training takes from the reviewed cases, which it does not train on either.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.store.records import ReviewedCase
from models.errors import DataError
from models.model_comparison import Comparison, compare
from models.progress import CancelFlag, ProgressCallback

HELD_OUT_SHARE = 0.25
MIN_HELD_OUT = 20  # fewer cases cannot tell two models apart at all
MIN_TRAIN_PER_LABEL = 4  # the training splits need a few of each label


@dataclass(frozen=True)
class ReviewedSplit:
    """The reviewed cases to train on and those held out to compare the models, with how they
    were drawn (kept in the audit trail with the comparison)."""

    train: tuple[ReviewedCase, ...]
    held_out: tuple[ReviewedCase, ...]
    seed: int
    share: float

    def record(self) -> dict:
        return {"seed": self.seed, "held_out_share": self.share,
                "train_case_ids": [c.case_id for c in self.train],
                "held_out_case_ids": [c.case_id for c in self.held_out],
                "labels": dict(Counter(c.label for c in (*self.train, *self.held_out)))}


def split_reviewed(cases: Sequence[ReviewedCase], share: float = HELD_OUT_SHARE,
                   seed: int = 13, train_only: frozenset[int] = frozenset(),
                   original: Sequence[tuple[str, str]] = ()) -> ReviewedSplit:
    """Hold out a random ``share`` of the reviewed cases (at least ``MIN_HELD_OUT``), never
    one of ``train_only`` (cases the champion was trained on: a comparison on them would
    favour it); refuse, saying how many more are needed, when there are too few. The
    ``original`` training rows (``--with-original``) count towards the training splits: only
    the held-out comparison must come from reviews alone."""
    if not 0 < share < 1:
        raise DataError("The held-out share must be between 0 and 1 (for example 0.25).")
    labels = Counter(c.label for c in cases)
    trained_labels = labels | Counter(label for _, label in original)
    if len(trained_labels) < 2:
        only = (f"all carry the label {next(iter(labels))!r}" if labels else "there are none")
        raise DataError(f"The reviewed cases cannot train a classifier: {only}. A model needs "
                        "reviewed cases of at least two labels.")
    held = max(MIN_HELD_OUT, round(share * len(cases)))
    # train, validation, calibration and test each need a few of every label
    training_rows = MIN_TRAIN_PER_LABEL * len(trained_labels) * 4
    needed = held + max(0, training_rows - len(original))
    if len(cases) < needed:
        raise DataError(f"{len(cases)} reviewed cases (signed, not deferred) are too few to "
                        f"train and compare a new model: at least {needed} are needed "
                        f"({needed - len(cases)} more) for {len(trained_labels)} labels"
                        + (f", with the {len(original)} original training rows." if original
                           else "."))
    eligible = [i for i, c in enumerate(cases) if c.case_id not in train_only]
    if len(eligible) < held:
        raise DataError(f"Only {len(eligible)} reviewed cases were not used to train the "
                        f"active model; {held} are needed to compare a new model with it "
                        f"({held - len(eligible)} more reviews of new cases).")
    order = np.random.default_rng(seed).permutation(len(eligible))
    chosen_set = {eligible[i] for i in order[:held]}
    chosen = sorted(chosen_set)
    rest = [i for i in range(len(cases)) if i not in chosen_set]
    return ReviewedSplit(tuple(cases[i] for i in rest), tuple(cases[i] for i in chosen),
                         seed, share)


def write_training_file(split: ReviewedSplit, path: Path,
                        original: Sequence[tuple[str, str]] = ()) -> Path:
    """The training cases as JSONL (``text``, ``label``): the reviewed ones, then ``original``
    (text, label) pairs (the model's own training data, when asked), minus any held-out text."""
    held = {c.text for c in split.held_out}
    rows = [(c.text, c.label) for c in split.train]
    rows += [(text, label) for text, label in original if text not in held]
    with Path(path).open("w", encoding="utf-8") as out:
        for text, label in rows:
            out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    return Path(path)


def compare_on_held_out(split: ReviewedSplit, champion, challenger) -> Comparison:
    """Both classifiers answer the held-out cases; a label a model does not know counts as a
    wrong answer of that model (it cannot give it)."""
    texts = [c.text for c in split.held_out]
    truth = [c.label for c in split.held_out]
    names = sorted({*truth, *champion.labels, *challenger.labels})
    index = {name: i for i, name in enumerate(names)}

    def answers(classifier) -> list[int]:
        return [index[p.label] for p in classifier.predict_batch(texts)]

    return compare([index[t] for t in truth], answers(champion), answers(challenger))


def new_labels(split: ReviewedSplit, known: Sequence[str]) -> list[str]:
    """Labels reviewers gave that the active model does not have (a new class)."""
    return sorted({c.label for c in (*split.train, *split.held_out)} - set(known))


def original_training_pairs(card, text_col: str = "text",
                            label_col: str = "label") -> list[tuple[str, str]]:
    """The (text, label) rows the model was trained from, read again: the demo data, or the
    training file its card names, refused when that file is gone or has changed since."""
    from models import data as data_io
    from models.artifact import sha256_file

    training = card.training_data or {}
    if training.get("name") == data_io.DEMO_NAME:
        (train, _), _ = data_io.load_demo()
        return list(zip(train.texts, train.labels, strict=True))
    files = training.get("files") or []
    if not files:
        raise DataError(f"Model {card.model_id}'s card does not name its training data.")
    source = Path(files[0]["source"])
    if not source.is_file():
        raise DataError(f"Model {card.model_id} was trained from {source}, which is gone: "
                        "train from the reviewed cases alone (without --with-original).")
    if sha256_file(source) != files[0].get("sha256"):
        raise DataError(f"{source} has changed since model {card.model_id} was trained from "
                        "it: train from the reviewed cases alone (without --with-original).")
    data, _ = data_io.load_labeled(source, text_col, label_col)
    return list(zip(data.texts, data.labels, strict=True))


@dataclass(frozen=True)
class LearningOptions:
    """How to train from the history (the CLI's flags, the window's dialog)."""

    approved_only: bool = False
    with_original: bool = False
    held_out: float = HELD_OUT_SHARE
    seed: int = 13
    text_col: str = "text"  # of the original training file, with ``with_original``
    label_col: str = "label"


@dataclass(frozen=True)
class Challenge:
    """A challenger trained from the reviewed cases and its comparison with the champion."""

    champion_id: str
    challenger: object  # models.registry.ModelRecord (saved, not active)
    comparison: Comparison
    split: ReviewedSplit
    new_labels: tuple[str, ...]


def trained_on(store, model_id: str) -> frozenset[int]:
    """The reviewed cases a model trained from the history was trained on (its comparison's
    record): never held out to compare it with a new model."""
    return frozenset(
        case_id for e in store.audit_events(kind="models_compared", limit=10_000)
        if e.payload.get("challenger") == model_id
        for case_id in e.payload.get("held_out", {}).get("train_case_ids", []))


def prepare(store, champion, options: LearningOptions) -> tuple[ReviewedSplit, list]:
    """The reviewed cases split, and the original training rows when asked: every check that
    can refuse (too few cases, a gone file) before the minutes of training."""
    original: list = []
    if options.with_original:
        from models.model_card import read_model_card

        card = read_model_card(Path(champion.path), champion.model_id)
        original = original_training_pairs(card, options.text_col, options.label_col)
    split = split_reviewed(store.reviewed_cases(approved_only=options.approved_only),
                           options.held_out, options.seed,
                           trained_on(store, champion.model_id), original)
    return split, original


def train_challenger(registry, champion, split: ReviewedSplit, original: Sequence,
                     config=None, base_dir: Path | None = None,
                     progress: ProgressCallback | None = None,
                     cancel: CancelFlag | None = None) -> Challenge:
    """Train a new model on the split's training cases (and ``original``), saved but not
    active, and compare it with ``champion`` on the held-out ones."""
    import tempfile

    from models.train_job import DatasetSpec, train_and_save

    with tempfile.TemporaryDirectory(prefix="casewise-reviewed-") as scratch:
        data = write_training_file(split, Path(scratch) / "reviewed.jsonl", original)
        record = train_and_save(DatasetSpec("reviewed cases from the case history", data),
                                registry, config, progress=progress, cancel=cancel,
                                activate=False, base_dir=base_dir)
    challenger = registry.classifier(record.id)
    comparison = compare_on_held_out(split, champion, challenger)
    return Challenge(champion.model_id, record, comparison, split,
                     tuple(new_labels(split, champion.labels)))


@dataclass(frozen=True)
class ComparisonRecord:
    """A comparison the history holds for a model, and a forced promotion that overrode it."""

    event_id: int
    time: str
    actor: str
    champion: str | None
    challenger: str
    comparison: dict
    forced_reason: str | None = None

    def line(self) -> str:
        c = self.comparison
        f1 = c["macro_f1_difference"]
        verdict = ("not worse by the rule" if c["promote"] else
                   f"put to work anyway: {self.forced_reason}" if self.forced_reason else
                   "kept inactive: not shown to be as good")
        return (f"{self.time[:16].replace('T', ' ')} UTC, {self.actor}: challenger "
                f"{self.challenger} against champion {self.champion or '—'} on {c['n']} "
                f"held-out reviewed cases: macro-F1 {c['champion_macro_f1']:.3f} → "
                f"{c['challenger_macro_f1']:.3f} ({f1[0]:+.3f}, 95 % [{f1[1]:+.3f}, "
                f"{f1[2]:+.3f}]); {verdict} (audit event {self.event_id}).")


def comparisons_of(store, model_id: str) -> list[ComparisonRecord]:
    """Every champion/challenger comparison in the history that involves ``model_id``: what
    its model card shows (the record itself is the audit trail's)."""
    forced = {e.payload.get("comparison_event"): e.payload.get("reason")
              for e in store.audit_events(kind="promotion_forced", limit=10_000)}
    return [ComparisonRecord(e.id, e.time, e.actor, e.payload.get("champion"),
                             e.payload["challenger"], e.payload["comparison"], forced.get(e.id))
            for e in store.audit_events(kind="models_compared", limit=10_000)
            if model_id in (e.payload.get("challenger"), e.payload.get("champion"))]
