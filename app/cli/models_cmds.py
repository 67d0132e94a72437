"""The models from the terminal: ``train``, ``models``, and the escalation policy's
``calibrate`` (fit it) and ``evaluate`` (show its evidence)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.cli.auth import add_auth_options, require_admin
from app.cli.common import (
    PARTLY_FAILED,
    TerminalProgress,
    add_record_options,
    data_path,
    load_cli_classifier,
    log_model_activated,
    log_policy_refitted,
    open_cli_store,
    recorded_weights,
    registry,
    settings_flags,
    with_settings,
)
from app.cli.common import record as file_in_history
from models.errors import DataError
from models.recipes import RECIPES

if TYPE_CHECKING:
    from models.types import ModelCard


def cmd_train(args: argparse.Namespace) -> int:
    from models.train_job import DatasetSpec, train_and_save, training_texts

    if args.from_history:
        return _train_from_history(args)
    if args.data is None:
        spec = DatasetSpec.demo()
    else:
        spec = DatasetSpec(Path(args.data).name, Path(args.data), args.text_col, args.label_col,
                           args.encoding, Path(args.test_data) if args.test_data else None)
    if not args.no_activate:  # before the minutes of training, not after
        require_admin(args, "train and activate a model")
    if args.with_explainer:
        from explainers.amortized_store import check_max_texts

        check_max_texts(args.explainer_texts)
    config = _training_config(args)
    models = registry(args)
    reporter = TerminalProgress()
    try:
        record = train_and_save(spec, models, config, progress=reporter,
                                activate=not args.no_activate,
                                base_dir=Path(args.base_model) if args.base_model else None)
    finally:
        reporter.close()
    # The model's events are filed first: it is saved whatever comes of the explainer's fit,
    # which `models --fit-explainer` can also run later.
    stored = _log_training(args, record)
    explainer, problem = None, None
    if args.with_explainer:
        try:
            explainer = _fit_with_progress(models, record.id, training_texts(spec, config),
                                           args.explainer_texts)
        except DataError as exc:
            problem = f"the model is saved, but its explainer was not fitted: {exc}"
    from models.model_card import read_model_card

    card = read_model_card(record.path, record.id)
    if args.json:
        extra = {"explainer": _explainer_json(explainer)} if explainer is not None else {}
        print(json.dumps({**record.to_dict(), "metrics": card.test_metrics,
                          "baseline": card.baseline_test,
                          "recipe": card.training.get("recipe", "fine-tune"), **extra}))
    else:
        _print_training_summary(record, card)
        if explainer is not None:
            _print_explainer(explainer)
    for warning in filter(None, (record.chance_warning, problem)):
        print(f"casewise: {warning}", file=sys.stderr)
    refused = record.chance_warning and not args.no_activate
    # Activation asked for and refused, or no explainer: part of the work failed (README,
    # "Exit codes").
    return stored or (PARTLY_FAILED if refused or problem else 0)


def _training_config(args: argparse.Namespace):
    from models.training import TrainingConfig

    overrides = {k: v for k, v in {"max_epochs": args.epochs, "max_length": args.max_length,
                                   "seed": args.seed, "recipe": args.recipe}.items()
                 if v is not None}
    return TrainingConfig(**overrides)


def _train_from_history(args: argparse.Namespace) -> int:
    """Train a challenger on the reviewed cases, compare it with the active model on reviewed
    cases neither saw, and put it to work only if it is not worse (or an admin forces it,
    saying why). The comparison is an audit event either way."""
    from app.casework import activate_model, load_classifier
    from app.learning import LearningOptions, prepare, train_challenger

    if args.force_reason and args.no_store:
        raise DataError("A forced promotion is recorded in the audit trail with its reason: "
                        "it cannot be made with --no-store.")
    options = LearningOptions(args.approved_only, args.with_original, args.held_out,
                              13 if args.seed is None else args.seed, args.text_col,
                              args.label_col)
    champion = load_classifier(data_path(args))
    store = open_cli_store(args)
    try:
        split, original = prepare(store, champion, options)
    finally:
        store.close()
    if args.force_reason or not args.no_activate:
        require_admin(args, "put a model trained from the history to work")
    reporter = TerminalProgress()
    try:
        challenge = train_challenger(registry(args), champion, split, original,
                                     _training_config(args),
                                     Path(args.base_model) if args.base_model else None,
                                     progress=reporter)
    finally:
        reporter.close()
    if challenge.new_labels:
        print(f"Reviewers used labels the active model does not have: "
              f"{', '.join(challenge.new_labels)}. The new model learns them; the active one "
              "counts as wrong on them.", file=sys.stderr)
    record, comparison = challenge.challenger, challenge.comparison
    print(comparison.summary())
    compared: list = []  # the comparison's audit event, for a forced promotion to cite
    logged = file_in_history(args, "the comparison", lambda s: compared.append(
        s.record_comparison(champion.model_id, record.id, comparison.to_dict(),
                            split.record())))
    if args.no_activate or not (comparison.promote or args.force_reason):
        why = "--no-activate" if args.no_activate else (
            f"the rule: {comparison.rule}. An admin may still put it to work with "
            "--force-reason \"why\"")
        print(f"{record.id} is kept, not active ({why}).", file=sys.stderr)
        return logged or _log_training(args, registry(args).record(record.id))
    if not comparison.promote:  # the reason is on the record before the model is at work
        cited = compared[0].id if compared else None
        logged = logged or file_in_history(args, "the forced promotion", lambda s:
                                            s.record_forced_promotion(record.id,
                                                                      args.force_reason, cited))
        if logged:
            print(f"{record.id} is kept, not active: its forced promotion could not be "
                  "recorded.", file=sys.stderr)
            return logged
    path = activate_model(data_path(args), record.id, recorded_weights(args, record.id))
    print(f"active model: {record.id} ({path.name})", file=sys.stderr)
    return logged or _log_training(args, registry(args).record(record.id))


def _log_training(args: argparse.Namespace, record) -> int:
    """The new model's first policy, and its activation, go in the audit trail."""
    path = Path(record.path)
    policy = registry(args).policy(path, record.id, record.labels)
    failed = log_policy_refitted(args, policy, "calibration split") if policy else 0
    if record.active:
        failed = failed or log_model_activated(args, path, record.id)
    return failed


def _print_training_summary(record, card: ModelCard) -> None:
    from models.model_card import training_sentence

    test, base = card.test_metrics, card.baseline_test
    state = (" (active)" if record.active else
             " (NOT active: no better than chance)" if record.chance_warning else "")
    print(f"model {record.id} saved to {record.path}{state}")
    print(f"  test split ({test['n']} cases): accuracy {test['accuracy']:.3f}, "
          f"macro-F1 {test['macro_f1']:.3f}; baseline {base['accuracy']:.3f} / "
          f"{base['macro_f1']:.3f}")
    print(f"  ECE (15 bins) {test['ece_before']:.3f} -> {test['ece_after']:.3f} "
          f"after temperature {card.temperature:.2f}")
    print(f"  {card.comparison}")
    print(f"  {training_sentence(card.training)}")


def cmd_models(args: argparse.Namespace) -> int:
    from app.casework import activate_model

    if args.fit_explainer:
        return _fit_explainer(args)
    if args.activate:
        require_admin(args, "activate a model")
        # What the window does: check the files against their manifest, then sign it with
        # this installation's key, so the model is trusted here from now on.
        path = activate_model(data_path(args), args.activate,
                              recorded_weights(args, args.activate))
        print(f"active model: {args.activate} (signed by this installation)", file=sys.stderr)
        stored = log_model_activated(args, path, args.activate)
        if stored:
            return stored
    records = registry(args).records()
    if args.json:
        print(json.dumps([r.to_dict() for r in records]))
        return 0
    if not records:
        print("no models yet: train one with `python main.py train`")
    for r in records:
        if r.problem:
            print(f"! {r.id}  damaged: {r.problem}")
            continue
        marker = "*" if r.active else " "
        scores = (f"acc {r.test_accuracy:.3f}  macro-F1 {r.test_macro_f1:.3f}"
                  if r.test_accuracy is not None else "")
        print(f"{marker} {r.id}  {r.created}  {r.training_data[:40]:<40}  {scores}")
        if r.chance_warning:
            print("    no better than chance: not activated when it was trained")
        if r.unsigned:
            print(f"    not signed by this installation: `models --activate {r.id}` (an "
                  "admin) checks and signs it")
    _, problem = registry(args).active_pointer()
    if problem:
        print(f"! {problem}")
    return 0


def _labelled_cases(args: argparse.Namespace, classifier, split: str
                    ) -> tuple[list[str], np.ndarray, str]:
    """The cases to calibrate or evaluate on: a file, or the split kept with the model."""
    from models.data import load_labeled
    from models.train_job import read_held_out

    if args.data:
        cases, _ = load_labeled(args.data, args.text_col, args.label_col, args.encoding)
        texts, labels, source = list(cases.texts), list(cases.labels), Path(args.data).name
    else:
        texts, labels = read_held_out(classifier.path, split)
        source = f"{split} split"
    unknown = sorted(set(labels) - set(classifier.labels))
    if unknown:
        raise DataError(f"Labels {unknown} in {source} are not the model's labels "
                        f"{classifier.labels}; relabel those cases or use another model.")
    return texts, np.array([classifier.labels.index(y) for y in labels]), source


def cmd_calibrate(args: argparse.Namespace) -> int:
    from models.escalation import EscalationSettings, fit_policy, save_policy

    args = with_settings(args)  # --alpha/--delta not given: the window's α and δ
    require_admin(args, "change the escalation policy (alpha, delta)")
    classifier = load_cli_classifier(args, args.model)
    settings = EscalationSettings(args.alpha, args.delta, args.set_score,
                                  tuple(args.always_review or ()))
    settings.check(classifier.labels)
    texts, truth, source = _labelled_cases(args, classifier, "calibration")
    reporter = TerminalProgress()
    try:
        scores = classifier.scores(texts, progress=reporter)
    finally:
        reporter.close()
    policy = fit_policy(scores, truth, classifier.labels, classifier.model_id, settings, source)
    path = save_policy(policy, classifier.path, registry(args).trust)
    record = policy.to_record()
    if args.json:
        print(json.dumps({k: record[k] for k in ("policy_id", "model_id", "threshold",
                                                 "n_calibration", "guarantee", "settings")}))
    else:
        print(f"policy {policy.policy_id} saved to {path}")
        threshold = "none" if policy.threshold is None else f"{policy.threshold:.2f}"
        print(f"  certified threshold: {threshold} (alpha {settings.alpha}, delta "
              f"{settings.delta}, {policy.n_calibration} cases from {source})")
        print(f"  {policy.guarantee}")
    return log_policy_refitted(args, policy, source)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models.escalation_evidence import evaluate_policy, risk_coverage_plot
    from models.model_card import escalation_summary

    classifier = load_cli_classifier(args, args.model)
    policy = registry(args).policy(classifier.path, classifier.model_id, classifier.labels)
    if policy is None:
        raise DataError("This model has no escalation policy yet: run "
                        "`python main.py calibrate` first.")
    texts, truth, source = _labelled_cases(args, classifier, "test")
    reporter = TerminalProgress() if not args.json else None
    try:
        scores = classifier.scores(texts, progress=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    evidence = evaluate_policy(policy, scores, truth)
    plot = Path(args.plot) if args.plot else (
        data_path(args) / "reports"
        / f"{classifier.model_id}-{policy.policy_id}-risk-coverage.png")
    risk_coverage_plot(policy, scores, truth, plot, evidence)
    evidence = {**evidence, "source": source, "plot": str(plot)}
    if args.json:
        print(json.dumps(evidence))
    else:
        print(f"policy {policy.policy_id} on {len(truth)} cases ({source})")
        print(f"  {policy.guarantee}")
        print(f"  {escalation_summary(evidence)}")
        print(f"  escalation reasons: {evidence['escalation_reasons']}")
        print(f"  risk-coverage plot: {plot}")
    return 0


def add_train_parser(commands) -> None:
    train = commands.add_parser("train", help="fine-tune a classifier (default: the demo data)")
    train.add_argument("--data", help="CSV, TSV or JSONL file of labelled texts")
    train.add_argument("--text-col", default="text", help="column with the text (default: text)")
    train.add_argument("--label-col", default="label",
                       help="column with the label (default: label)")
    train.add_argument("--test-data",
                       help="a separate test file (split into calibration and test)")
    train.add_argument("--encoding", help="file encoding when it is not UTF-8")
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may stop sooner)")
    train.add_argument("--max-length", type=int, help="model window in tokens (default 256)")
    train.add_argument("--seed", type=int, help="random seed (default 13)")
    train.add_argument("--recipe", choices=RECIPES,
                       help="auto (default): SetFit below 100 training examples a class, the "
                            "fine-tune above, stacked with the TF-IDF baseline when that wins "
                            "on validation; or one by name (ensemble: three fine-tunes, "
                            "about 3x the training and prediction time; stacked: the "
                            "fine-tune stacked with TF-IDF)")
    train.add_argument("--base-model", help="a local encoder directory to fine-tune instead of "
                       "the embedded all-MiniLM-L6-v2")
    train.add_argument("--no-activate", action="store_true", help="do not make it the active model")
    train.add_argument("--from-history", action="store_true",
                       help="train on the cases reviewers labelled (latest signed review of "
                            "each case), compare with the active model on held-out reviewed "
                            "cases, and activate only if not worse")
    train.add_argument("--approved-only", action="store_true",
                       help="with --from-history: only reviews signed as \"approved\"")
    train.add_argument("--with-original", action="store_true",
                       help="with --from-history: add the active model's own training data")
    train.add_argument("--held-out", type=float, default=0.25, metavar="SHARE",
                       help="with --from-history: share of reviewed cases held out to compare "
                            "(default 0.25)")
    train.add_argument("--force-reason", metavar="WHY",
                       help="with --from-history: activate even if the comparison does not "
                            "promote it (an admin's; recorded in the audit trail)")
    train.add_argument("--with-explainer", action="store_true",
                       help="then fit the model's amortized explainer (instant attributions) "
                            "on the texts it was trained on; minutes more (the window does "
                            "this in the background after training)")
    train.add_argument("--explainer-texts", type=int, default=600, metavar="N",
                       help="with --with-explainer: at most N texts (default 600)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(handler=cmd_train)
    add_auth_options(train)  # an admin's, once the history has accounts
    add_record_options(train)


KEPT = "<kept>"  # --fit-explainer without a file: the model's kept calibration split


def _fit_explainer(args: argparse.Namespace) -> int:
    """Sampled Shapley values of the training texts, the amortized head fitted to them and
    gated, signed beside the model (explainers.amortized_store)."""
    from models.data import load_texts

    require_admin(args, "fit an amortized explainer")
    texts = (load_texts(args.fit_explainer, args.text_col, args.encoding)
             if args.fit_explainer != KEPT else None)
    explainer = _fit_with_progress(registry(args), args.model, texts, args.explainer_texts)
    if args.json:
        print(json.dumps(_explainer_json(explainer)))
    else:
        _print_explainer(explainer)
    return 0


def _fit_with_progress(models, model_id: str | None, texts: list[str] | None,
                       max_texts: int):
    """Fit and publish the model's explainer with a progress bar on the terminal."""
    from explainers.amortized_store import fit_and_save

    reporter = TerminalProgress()
    try:
        return fit_and_save(models, model_id, texts, max_texts, progress=reporter)
    finally:
        reporter.close()


def _explainer_json(explainer) -> dict:
    return {"id": explainer.explainer_id, "enabled": explainer.enabled, **explainer.record}


def _print_explainer(explainer) -> None:
    print(explainer.summary)
    if not explainer.enabled:
        print("It is kept but not used: attributions start from the partition pass.")


def add_model_parsers(commands) -> None:
    """``models``, ``calibrate`` and ``evaluate`` (``train`` is added first, on its own)."""
    models = commands.add_parser("models", help="list models; activate one")
    models.add_argument("--activate", metavar="ID",
                        help="make this model the active one, signing it with this "
                             "installation's key (how a model trained elsewhere is trusted)")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.add_argument("--fit-explainer", metavar="FILE", nargs="?", const=KEPT,
                        help="fit the model's amortized explainer (instant attributions) on "
                             "the texts of FILE (CSV/TSV/JSONL: the file it was trained on), "
                             "or without FILE on the calibration split kept with the model; "
                             "minutes of work")
    models.add_argument("--model", help="with --fit-explainer: model id (default: active)")
    models.add_argument("--text-col", help="with --fit-explainer: the text column")
    models.add_argument("--encoding", help="with --fit-explainer: the file's encoding")
    models.add_argument("--explainer-texts", type=int, default=600, metavar="N",
                        help="with --fit-explainer: at most N texts (a seeded random sample; "
                             "default 600)")
    models.set_defaults(handler=cmd_models)
    add_auth_options(models)  # an admin's, once the history has accounts
    add_record_options(models)

    calibrate = commands.add_parser(
        "calibrate", help="fit the escalation policy (default: the model's calibration split)")
    _data_options(calibrate)
    calibrate.add_argument("--alpha", type=float,
                           help="bound on the error among automatic decisions (default: α in "
                                "the settings, 0.10 unless changed)")
    calibrate.add_argument("--delta", type=float,
                           help="chance the bound fails over the calibration draw (default: δ "
                                "in the settings, 0.10 unless changed)")
    calibrate.add_argument("--set-score", default="lac", choices=("lac", "aps"),
                           help="conformal score of the prediction sets (default lac)")
    calibrate.add_argument("--always-review", nargs="*", metavar="LABEL",
                           help="labels that are always escalated")
    calibrate.set_defaults(handler=cmd_calibrate)
    add_auth_options(calibrate)  # an admin's, once the history has accounts
    settings_flags(calibrate, alpha="alpha", delta="delta")
    add_record_options(calibrate)

    evaluate = commands.add_parser(
        "evaluate", help="the escalation policy's evidence (default: the model's test split)")
    _data_options(evaluate)
    evaluate.add_argument("--plot", help="where to write the risk-coverage PNG")
    evaluate.set_defaults(handler=cmd_evaluate)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="labelled cases (CSV, TSV or JSONL) instead of the split "
                                       "kept with the model")
    parser.add_argument("--text-col", default="text", help="column with the text")
    parser.add_argument("--label-col", default="label", help="column with the label")
    parser.add_argument("--encoding", help="file encoding when it is not UTF-8")
    parser.add_argument("--model", help="model id (default: the active model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
